#!/bin/sh
# Ansible benchmark (issue 15): a 20-task playbook against N hosts through the site agent (runner
# processes on this host, test/ansible/host-rack.ts) and, side by side, over SSH to N sshd on loopback.
#   scripts/bench/ansible/run.sh [N,N,...]        default 1,10,100; needs `npm run build` first
# The SSH side needs sshd (Debian: openssh-server) and ssh-keygen; without them it is skipped, said so.
# Not part of CI. Figures: docs/ansible.md.
cd "$(dirname "$0")/../../.." || exit 1
UL_BENCH_N="${1:-1,10,100}" exec npx vitest run --config scripts/bench/ansible/vitest.config.mts
