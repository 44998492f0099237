# Deliberately broken (make psparse requires the parser to reject it): the
# parameter here-string's closing '@ is indented, and PowerShell ends a
# here-string only at a '@ at the start of a line, so it is never closed.
# PowerShell: "The string is missing the terminator: '@."
# patchway-op: scan/1
$PatchwayParams = ConvertFrom-Json @'
{"kb":"KB958644","files":[]}
  '@
Write-Output $PatchwayParams.kb
