# free_port: a free loopback port, never one handed out before in this run (the kernel may offer a
# port again as soon as the probe closes it, and two servers would then be given the same one).
# Sourced by the console tests (tests/cli), after they set $work (a folder of their own).
free_port() {
  local port
  while :; do
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    grep -qx "$port" "$work/ports" 2>/dev/null || break
  done
  echo "$port" >>"$work/ports"
  echo "$port"
}
