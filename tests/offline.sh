#!/bin/sh
# Run a command with the network cut: a fresh network namespace holding only
# loopback. Where no namespace can be made, run it as is (the tests' own
# socket guard still refuses connections outside loopback).
if command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 && unshare -rn true 2>/dev/null; then
	echo "offline: running with the network cut (loopback only): $*" >&2
	exec unshare -rn sh -c 'ip link set lo up && exec "$@"' offline "$@"
fi
echo "offline: no network namespace available; running behind the socket guard: $*" >&2
exec "$@"
