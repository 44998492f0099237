package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one patchway process the benchmark started (server, worker or
// fleet): its output goes to a log file and is scanned for a readiness
// line; its peak RSS and CPU time are read from /proc before it stops.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string // recent output, for errors
	wait  *regexp.Regexp
	match chan []string
}

// procSet stops every process it started, on every exit path.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

// start runs bin with args and env in dir's log file and waits, at most
// timeout, for a line matching ready; it returns the submatches.
func (ps *procSet) start(ctx context.Context, name, logDir, bin string, args, env []string, ready *regexp.Regexp, timeout time.Duration) (*proc, []string, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	// A benchmark killed hard takes its processes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), wait: ready, match: make(chan []string, 1)}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	ps.mu.Lock()
	ps.procs = append(ps.procs, p)
	ps.mu.Unlock()
	go p.scan(pr, f)
	go func() {
		p.err = cmd.Wait()
		_ = pw.Close()
		close(p.done)
	}()
	select {
	case m := <-p.match:
		return p, m, nil
	case <-p.done:
		return nil, nil, fmt.Errorf("%s exited before it was ready (%v); last output:\n%s", name, p.err, p.tail())
	case <-time.After(timeout):
		p.kill()
		return nil, nil, fmt.Errorf("%s not ready within %s; last output:\n%s", name, timeout, p.tail())
	case <-ctx.Done():
		p.kill()
		return nil, nil, ctx.Err()
	}
}

func (p *proc) scan(r io.Reader, log *os.File) {
	defer log.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if len(p.lines) > 20 {
			p.lines = p.lines[1:]
		}
		w := p.wait
		p.mu.Unlock()
		if w != nil {
			if m := w.FindStringSubmatch(line); m != nil {
				p.mu.Lock()
				p.wait = nil
				p.mu.Unlock()
				p.match <- m
			}
		}
	}
	// Keep draining so the process never blocks on a full pipe.
	_, _ = io.Copy(log, r)
}

func (p *proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// usage is what a process used, read from /proc while it still runs.
type usage struct {
	// PeakRSS is VmHWM, the resident set's high-water mark, in bytes.
	PeakRSS int64
	// CPU is user plus system time.
	CPU time.Duration
}

// usage reads the process's peak RSS and CPU time.
func (p *proc) usage() (usage, error) { return readUsage(p.cmd.Process.Pid) }

func readUsage(pid int) (usage, error) {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return u, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			u.PeakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// USER_HZ is 100 on every Linux architecture Go supports.
	u.CPU = time.Duration(utime+stime) * (time.Second / 100)
	return u, nil
}

// stop reads the process's usage, then asks it to stop (SIGTERM: the
// worker writes its profile and policy statistics) and waits at most
// timeout before killing it.
func (p *proc) stop(timeout time.Duration) (usage, error) {
	u, uerr := p.usage()
	select {
	case <-p.done:
		return u, fmt.Errorf("%s had exited: %v; last output:\n%s", p.name, p.err, p.tail())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return u, fmt.Errorf("%s did not stop within %s of SIGTERM", p.name, timeout)
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		return u, p.err
	}
	if p.err != nil {
		return u, fmt.Errorf("%s exited %v on SIGTERM; last output:\n%s", p.name, p.err, p.tail())
	}
	return u, uerr
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// killAll kills whatever is still running.
func (ps *procSet) killAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.procs {
		p.kill()
	}
	ps.procs = nil
}
