#!/usr/bin/env bash
# A real Cobbler 3.3.10 (PyPI) for the tests, on loopback: XML-RPC on 127.0.0.1:25151,
# the /cblr/svc services on 127.0.0.1:25152. One instance per machine (Cobbler
# hard-codes /etc/cobbler, /var/lib/cobbler, /var/www/cobbler), shared by every test
# process; it needs root. See ../../../shared/reference/cobbler.md for the facts.
#
#   cobbler.sh install   Debian packages + the venv (what a fresh machine lacks)
#   cobbler.sh start     install if needed, set up, start; prints COBBLER_* lines
#   cobbler.sh stop      stop cobblerd and the svc server
#   cobbler.sh status    exit 0 when XML-RPC answers
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=/var/lib/metalfarm-test
venv=$state/cobbler-venv
run=$state/cobbler-run
password_file=$state/cobbler-password
# Marks the /etc/cobbler this script made: any other one belongs to a real Cobbler.
marker=/etc/cobbler/.metalfarm-test
xmlrpc_port=25151
svc_port=25152
distro=metalfarm-test-distro
profile=metalfarm-test

# `pip install cobbler` fails (it declares mod-wsgi and python-ldap, which cobblerd
# does not use): its runtime dependencies pinned, then cobbler without deps.
pins=(Cheetah3==3.2.6.post1 distro==1.9.0 dnspython==2.9.2 file-magic==0.4.1
    netaddr==1.3.0 PyYAML==6.0.4 requests==2.34.2 schema==0.7.8)
cobbler_pin=cobbler==3.3.10

die() { echo "cobbler.sh: $*" >&2; exit 2; }

# Serialises every command: tests start Cobbler concurrently.
lock() {
    mkdir -p "$state"
    exec 9>"$state/cobbler.lock"
    flock -w 300 9 || die "timed out waiting for $state/cobbler.lock"
}

install_all() {
    [ "$(id -u)" = 0 ] || die "Cobbler needs root (fixed system paths)"
    local missing=()
    [ -x /usr/bin/python3 ] || missing+=(python3)
    command -v rsync >/dev/null || missing+=(rsync)
    ldconfig -p | grep 'libmagic\.so\.1 ' >/dev/null || missing+=(libmagic1)
    /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if ((${#missing[@]})); then
        echo "cobbler.sh: installing Debian packages: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
    # The venv is rebuilt only when the pins change.
    local stamp="${pins[*]} $cobbler_pin"
    if [ "$(cat "$venv/.metalfarm-pins" 2>/dev/null)" != "$stamp" ]; then
        echo "cobbler.sh: installing $cobbler_pin into $venv" >&2
        rm -rf "$venv"
        # Debian's python, not whatever python3 is first on PATH (pyenv, …).
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q --no-input "${pins[@]}" >&2
        "$venv/bin/pip" install -q --no-input --no-deps "$cobbler_pin" >&2
        echo "$stamp" >"$venv/.metalfarm-pins"
    fi
}

# The data files the wheel ships, copied to the paths Cobbler hard-codes, and the
# test settings. Existing files are kept, except settings and users.digest.
set_up() {
    if [ -n "$(ls -A /etc/cobbler 2>/dev/null)" ] && [ ! -e "$marker" ]; then
        die "/etc/cobbler was not made by this script (no $marker): refusing to touch it"
    fi
    local site
    site=$(echo "$venv"/lib/python3*/site-packages)
    mkdir -p /etc/cobbler
    touch "$marker"
    cp -rn "$site/etc/cobbler/." /etc/cobbler/
    mkdir -p /var/lib/cobbler /var/www/cobbler
    cp -rn "$site/var/lib/cobbler/." /var/lib/cobbler/
    cp -rn "$site/var/www/cobbler/." /var/www/cobbler/
    # What nothing else creates: without these, saves and logging fail.
    local d
    for d in distros profiles systems repos images mgmtclasses packages files menus; do
        mkdir -p "/var/lib/cobbler/collections/$d"
    done
    for d in pre post firstboot; do
        mkdir -p "/var/lib/cobbler/triggers/install/$d"
    done
    mkdir -p /var/log/cobbler/tasks /var/log/cobbler/anamon /var/lib/cobbler/loaders \
        /var/lib/cobbler/fence_farmtest /srv/tftpboot /var/www/cobbler/distro_mirror "$run"

    # pxe_just_once: without it nopxe does nothing. http_port: where generated
    # kickstarts call back (the svc server).
    local settings=/etc/cobbler/settings.yaml
    sed -i -E \
        -e "s/^http_port:.*/http_port: $svc_port/" \
        -e "s/^xmlrpc_port:.*/xmlrpc_port: $xmlrpc_port/" \
        -e 's/^server:.*/server: 127.0.0.1/' \
        -e 's/^next_server_v4:.*/next_server_v4: 127.0.0.1/' \
        -e 's/^pxe_just_once:.*/pxe_just_once: true/' \
        -e 's/^manage_tftpd:.*/manage_tftpd: true/' \
        -e 's/^run_install_triggers:.*/run_install_triggers: true/' \
        -e 's/^(manage_dhcp|manage_dhcp_v4|manage_dhcp_v6|manage_dns):.*/\1: false/' \
        "$settings"

    if [ ! -s "$password_file" ]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$password_file")
    fi
    local digest
    digest=$("$venv/bin/python3" -c 'import hashlib, sys; print(hashlib.sha3_512(open(sys.argv[1]).read().strip().encode()).hexdigest())' "$password_file")
    echo "cobbler:Cobbler:$digest" >/etc/cobbler/users.digest

    install -m 755 "$here/fence_farmtest" /usr/sbin/fence_farmtest
    # Copies outside the checkout: the daemons outlive the worktree that started them.
    install -m 644 "$here/svc.py" "$run/svc.py"
    install -m 644 "$here/cobbler_rpc.py" "$run/cobbler_rpc.py"
    cat >/var/lib/cobbler/triggers/install/post/90_farmtest_log <<'TRIGGER'
#!/bin/sh
# Install post trigger: argv is `system <name> <ip>`.
echo "$(date -u +%FT%TZ) post $*" >>/var/log/cobbler/farmtest_triggers.log
TRIGGER
    chmod 755 /var/lib/cobbler/triggers/install/post/90_farmtest_log
}

# A live process from a pid file; a zombie (reaped late by PID 1) counts as gone.
alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

rpc() { "$venv/bin/python3" "$run/cobbler_rpc.py" "http://127.0.0.1:$xmlrpc_port/" "$@"; }

answers() { rpc ping >/dev/null 2>&1; }

# Detached from the caller (setsid, no inherited pipes, not the lock): a test process that starts
# Cobbler must not wait for it, nor take it down when it ends.
spawn() {
    local name=$1
    shift
    setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        "$@" </dev/null >>"/var/log/cobbler/$name.out" 2>&1 9>&- &
    echo $! >"$run/$name.pid"
}

start() {
    install_all
    set_up
    if ! alive "$run/cobblerd.pid" && ! answers; then
        # Install status is per address over the whole log: a new server starts afresh.
        : >/var/log/cobbler/install.log
        spawn cobblerd "$venv/bin/cobblerd" -F
    fi
    alive "$run/svc.pid" || spawn svc "$venv/bin/python3" "$run/svc.py" "$svc_port"
    local i
    for ((i = 0; i < 300; i++)); do
        answers && break
        alive "$run/cobblerd.pid" || { tail -n 20 /var/log/cobbler/cobblerd.out >&2; die "cobblerd exited"; }
        sleep 0.1
    done
    answers || die "cobblerd does not answer on 127.0.0.1:$xmlrpc_port after 30 s"
    test_objects
    echo "COBBLER_URL=http://127.0.0.1:$xmlrpc_port/"
    echo "COBBLER_USER=cobbler"
    echo "COBBLER_PASSWORD_FILE=$password_file"
    echo "COBBLER_SVC=http://127.0.0.1:$svc_port"
}

# The test distro (fake kernel and initrd: nothing boots them) and the test profile.
test_objects() {
    local token
    token=$(rpc login '"cobbler"' "\"$(cat "$password_file")\"")
    if [ "$(rpc has_item '"distro"' "\"$distro\"")" != true ]; then
        mkdir -p "$state/distro"
        echo "metalfarm test kernel" >"$state/distro/vmlinuz"
        echo "metalfarm test initrd" >"$state/distro/initrd.img"
        rpc xapi_object_edit '"distro"' "\"$distro\"" '"add"' \
            "{\"name\": \"$distro\", \"kernel\": \"$state/distro/vmlinuz\", \"initrd\": \"$state/distro/initrd.img\", \"arch\": \"x86_64\", \"breed\": \"redhat\", \"os_version\": \"fedora18\"}" \
            "$token" >/dev/null
    fi
    if [ "$(rpc has_item '"profile"' "\"$profile\"")" != true ]; then
        rpc xapi_object_edit '"profile"' "\"$profile\"" '"add"' "{\"name\": \"$profile\", \"distro\": \"$distro\"}" "$token" >/dev/null
    fi
}

stop_one() {
    local pidfile=$run/$1.pid pid i
    alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pidfile" || break
        sleep 0.1
    done
    alive "$pidfile" && kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

stop() {
    stop_one svc
    stop_one cobblerd
}

case ${1:-} in
    install) lock && install_all ;;
    start) lock && start ;;
    stop) lock && stop ;;
    status) [ -x "$venv/bin/python3" ] && [ -f "$run/cobbler_rpc.py" ] && answers ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
