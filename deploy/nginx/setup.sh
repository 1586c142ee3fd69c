#!/usr/bin/env bash
# `make nginx`: Debian's nginx and openssl for the proxy test (tests/proxy/) and the two-node
# bench (bench/bench_two_nodes.py), installed when missing. Idempotent.
#
# The tests run nginx masters of their own (as the current user, on free ports, with a
# self-signed certificate in a temporary folder), never the system's: the nginx.service the
# package starts is stopped and disabled, so port 80 stays free and nothing runs unasked.
# Installing needs root (apt), like `make chromium`.
set -euo pipefail

say() { printf 'nginx: %s\n' "$*"; }

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  ((EUID == 0)) || { say "error: ${missing[*]} missing; run as root or apt-get install ${missing[*]}" >&2; exit 1; }
  say "installing Debian's ${missing[*]}"
  # policy-rc.d exit 101: the package's post-install may not start its service.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${policy}" && chmod +x "${policy}" && own_policy=1
  fi
  trap 'if ((own_policy)); then rm -f "${policy}"; fi' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Never the system's nginx: stop and disable the service if a package start left it running.
if ((EUID == 0)); then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled nginx >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
  if [[ -s /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    say "stopping the system nginx the package started (pid $(cat /run/nginx.pid))"
    /usr/sbin/nginx -s quit 2>/dev/null || kill "$(cat /run/nginx.pid)" 2>/dev/null || true
  fi
fi
say "$(/usr/sbin/nginx -v 2>&1), $(openssl version)"
