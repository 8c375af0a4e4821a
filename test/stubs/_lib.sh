# Shared by the stand-ins: every call is recorded, state lives under $F3S_STUB_STATE.
S="${F3S_STUB_STATE:?F3S_STUB_STATE is not set}"
mkdir -p "$S"
record() { printf '%s\n' "$*" >> "$S/calls"; }
key() { printf '%s' "$1" | tr '/' '%'; }
