"""Drive a simulated Windows host with pywinrm, as a user checks a host.

Run by fleetsim/pywinrm_test.go with Debian's python3-winrm under
/usr/bin/python3:

    pywinrm_check.py https://127.0.0.1:PORT/wsman CA_FILE

The user name and password come from FLEET_USER and FLEET_PASSWORD (never
the command line). It opens ONE shell with winrm.Protocol and runs several
commands in it, as pywinrm and Ansible do: cmd.exe commands, run_ps-style
encoded PowerShell nested twice, and two commands started before either is
read. Then it runs winrm.Session.run_ps once (its own shell). It prints one
JSON object with every result; the Go test judges them.
"""

import base64
import json
import os
import sys

import winrm


def encoded(script):
    """powershell -EncodedCommand's argument: UTF-16LE, then base64."""
    return base64.b64encode(script.encode("utf_16_le")).decode("ascii")


def main():
    endpoint, ca_file = sys.argv[1], sys.argv[2]
    user, password = os.environ["FLEET_USER"], os.environ["FLEET_PASSWORD"]
    p = winrm.Protocol(endpoint=endpoint, transport="basic", username=user, password=password,
                       ca_trust_path=ca_file, operation_timeout_sec=5, read_timeout_sec=10)
    out = {"commands": []}

    def record(name, shell, command_id):
        stdout, stderr, code = p.get_command_output(shell, command_id)
        p.cleanup_command(shell, command_id)
        out["commands"].append({"name": name, "command_id": command_id, "stdout": stdout.decode(),
                                "stderr": stderr.decode(), "exit": code})

    shell = p.open_shell()
    out["shell_id"] = shell
    record("echo", shell, p.run_command(shell, "echo hi"))
    record("echo_args", shell, p.run_command(shell, "echo", ["hello", "world"]))
    record("hostname", shell, p.run_command(shell, "hostname"))
    record("whoami", shell, p.run_command(shell, "whoami"))
    inner = "powershell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand " + \
        encoded("Write-Output 'nested twice'")
    record("run_ps_nested_twice", shell, p.run_command(shell, "powershell -encodedcommand " + encoded(inner)))
    record("unknown", shell, p.run_command(shell, "ipconfig", ["/all"]))
    first = p.run_command(shell, "echo first")
    second = p.run_command(shell, "echo second")
    record("interleaved_second", shell, second)
    record("interleaved_first", shell, first)
    p.close_shell(shell)

    s = winrm.Session(endpoint, auth=(user, password), transport="basic", ca_trust_path=ca_file)
    r = s.run_ps("hostname; whoami")
    out["session_run_ps"] = {"stdout": r.std_out.decode(), "stderr": r.std_err.decode(), "exit": r.status_code}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
