# Shared by the gateway's shell tests (sourced): `source gateway_common.sh NAME` after setting
# `radguard`. Makes the scratch folder $work (removed at exit, with every pid in $pids killed)
# and defines fail, free_port, wait_for, status_field and field_is.
work=$(mktemp -d "/tmp/radguard-gateway-$1.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
samples=/usr/lib/python3/dist-packages/pydicom/data/test_files
fail() {
  echo "FAIL ($SECONDS s): $*" >&2
  for f in "$work"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
  exit 1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() {
  local limit=$(( $1 * 10 )); shift
  for ((i = 0; i < limit; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}
status_field() {  # status_field SPOOL FIELD
  "$radguard" gateway status --spool "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
field_is() { [ "$(status_field "$1" "$2")" = "$3" ]; }
