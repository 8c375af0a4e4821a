# Shared by the stand-ins: every call is recorded, state lives under $F3S_STUB_STATE.
S="${F3S_STUB_STATE:?F3S_STUB_STATE is not set}"
mkdir -p "$S"
# Kill tests: with F3S_KILL_AT=N, the Nth call matching the extended regex F3S_KILL_MATCH kills the
# whole run (its process group; the harness starts it in a session of its own) before the call
# does anything, as a power cut or kill -9 would stop it there.
maybe_kill() {
  [ -n "${F3S_KILL_AT:-}" ] || return 0
  printf '%s\n' "$1" | grep -Eq "$F3S_KILL_MATCH" || return 0
  local n=$(( $(cat "$S/kill-count" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$S/kill-count"
  if [ "$n" -eq "$F3S_KILL_AT" ]; then
    printf '%s\n' "$1" > "$S/killed-at"
    kill -KILL 0
  fi
}
# Every call, and with the time it was made (the rollout tests read the order hosts changed in).
record() { maybe_kill "$*"; printf '%s\n' "$*" >> "$S/calls"; printf '%s %s\n' "${EPOCHREALTIME:-0}" "$*" >> "$S/calls.ts"; }
key() { printf '%s' "$1" | tr '/' '%'; }
