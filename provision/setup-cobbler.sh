#!/usr/bin/env bash
# Sets up a Cobbler server for a metalfarm lab: the KVM host template and its snippets, the
# distro, and the profile the farm installs (with the farm's SSH key, NFS and NTP settings in
# its autoinstall_meta). Everything goes through Cobbler's XML-RPC API, so it runs on the
# Cobbler server or anywhere that reaches it. Safe to run again: it updates what exists.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<'USAGE'
Usage: provision/setup-cobbler.sh --ssh-key-file FILE [OPTION...]

Cobbler server
  --url URL               XML-RPC endpoint (default $COBBLER_URL, else http://127.0.0.1/cobbler_api)
  --user NAME             Cobbler user (default $COBBLER_USER, else cobbler)
  --password-file FILE    file holding the user's password (default $COBBLER_PASSWORD_FILE)

What to create or update
  --profile NAME          profile the farm installs (default f18-autotest-kvm)
  --template NAME         name of the template in Cobbler (default metalfarm-kvm.ks)
  --distro NAME           distro of the profile; created or updated when --kernel and --initrd
                          are given, else it must exist (default: the profile's current distro)
  --kernel PATH           kernel on the Cobbler server (with --initrd: creates/updates --distro)
  --initrd PATH           initrd on the Cobbler server
  --tree URL              install tree of the distro (its autoinstall_meta "tree"; an imported
                          distro has one already)
  --breed NAME            distro breed (default redhat)
  --os-version NAME       distro OS version (default fedora18)
  --arch NAME             distro architecture (default x86_64)

Profile settings (autoinstall_meta, read by the template)
  --ssh-key-file FILE     the farm's ed25519 public key ([ssh] private_key_file + ".pub"); required
  --ntp-server HOST       time server the install syncs with before anything else
  --nfs-server HOST       NFS server of the lab
  --nfs-isos PATH         export with the install ISOs (mounted read-only)
  --nfs-steps PATH        export with the tests' steps data (mounted read-only)
  --nfs-archive PATH      export with the image archive; each host mounts PATH/<its system name>

  -h, --help              this text
USAGE
}

url=${COBBLER_URL:-http://127.0.0.1/cobbler_api}
user=${COBBLER_USER:-cobbler}
password_file=${COBBLER_PASSWORD_FILE:-}
profile=f18-autotest-kvm
template=metalfarm-kvm.ks
distro='' kernel='' initrd='' tree=''
breed=redhat os_version=fedora18 arch=x86_64
ssh_key_file='' ntp_server='' nfs_server='' nfs_isos='' nfs_steps='' nfs_archive=''

while [ $# -gt 0 ]; do
    # Every option takes a value, so a missing one is a usage error, not a silent empty string.
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --*) [ $# -ge 2 ] || { echo "setup-cobbler: $1 needs a value" >&2; exit 2; } ;;
        *) echo "setup-cobbler: unexpected argument $1 (see --help)" >&2; exit 2 ;;
    esac
    case "$1" in
        --url) url=$2 ;;
        --user) user=$2 ;;
        --password-file) password_file=$2 ;;
        --profile) profile=$2 ;;
        --template) template=$2 ;;
        --distro) distro=$2 ;;
        --kernel) kernel=$2 ;;
        --initrd) initrd=$2 ;;
        --tree) tree=$2 ;;
        --breed) breed=$2 ;;
        --os-version) os_version=$2 ;;
        --arch) arch=$2 ;;
        --ssh-key-file) ssh_key_file=$2 ;;
        --ntp-server) ntp_server=$2 ;;
        --nfs-server) nfs_server=$2 ;;
        --nfs-isos) nfs_isos=$2 ;;
        --nfs-steps) nfs_steps=$2 ;;
        --nfs-archive) nfs_archive=$2 ;;
        *) echo "setup-cobbler: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift 2
done

fail() { echo "setup-cobbler: $*" >&2; exit 2; }
[ -n "$password_file" ] || fail "--password-file (or COBBLER_PASSWORD_FILE) is required"
[ -r "$password_file" ] || fail "cannot read the password file $password_file"
[ -n "$ssh_key_file" ] || fail "--ssh-key-file is required (the farm's ed25519 public key)"
[ -r "$ssh_key_file" ] || fail "cannot read the SSH key file $ssh_key_file"
# Old farms pushed a DSA key that current OpenSSH refuses; the farm's key is ed25519.
ssh_key=$(awk 'NF { print; exit }' "$ssh_key_file")
case "$ssh_key" in
    ssh-ed25519\ *) ;;
    *) fail "$ssh_key_file is not an ssh-ed25519 public key" ;;
esac
if [ -n "$kernel$initrd" ] && { [ -z "$kernel" ] || [ -z "$initrd" ] || [ -z "$distro" ]; }; then
    fail "--kernel and --initrd go together, with --distro"
fi

# Passed in the environment, not on a command line that ps shows.
export MF_URL=$url MF_USER=$user MF_PASSWORD_FILE=$password_file MF_PROFILE=$profile
export MF_TEMPLATE=$template MF_DISTRO=$distro MF_KERNEL=$kernel MF_INITRD=$initrd MF_TREE=$tree
export MF_BREED=$breed MF_OS_VERSION=$os_version MF_ARCH=$arch MF_SSH_KEY=$ssh_key
export MF_NTP_SERVER=$ntp_server MF_NFS_SERVER=$nfs_server MF_NFS_ISOS=$nfs_isos
export MF_NFS_STEPS=$nfs_steps MF_NFS_ARCHIVE=$nfs_archive
export MF_KICKSTART_DIR=$here/kickstart MF_SNIPPETS_DIR=$here/snippets

# xmlrpc.client is in Python's standard library, so any Cobbler server (or admin box) has it.
exec python3 - <<'PY'
import os
import sys
import xmlrpc.client

env = os.environ
server = xmlrpc.client.ServerProxy(env["MF_URL"], allow_none=True)


def fail(message):
    print(f"setup-cobbler: {message}", file=sys.stderr)
    sys.exit(1)


try:
    with open(env["MF_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    token = server.login(env["MF_USER"], password)

    # The template and every snippet it needs that Cobbler does not ship.
    with open(os.path.join(env["MF_KICKSTART_DIR"], "metalfarm-kvm.ks")) as f:
        server.write_autoinstall_template(env["MF_TEMPLATE"], f.read(), token)
    for name in sorted(os.listdir(env["MF_SNIPPETS_DIR"])):
        with open(os.path.join(env["MF_SNIPPETS_DIR"], name)) as f:
            server.write_autoinstall_snippet(name, f.read(), token)
        print(f"snippet {name}")
    print(f"template {env['MF_TEMPLATE']}")

    def upsert(kind, name, attrs):
        """Creates the object, or updates the one of that name: attribute by attribute, so a
        second run changes only what this script sets."""
        exists = server.has_item(kind, name, token)
        if exists:
            handle = server.get_item_handle(kind, name, token)
        else:
            handle = server.new_item(kind, token)
            server.modify_item(kind, handle, "name", name, token)
        for attribute, value in attrs.items():
            if not server.modify_item(kind, handle, attribute, value, token):
                fail(f"Cobbler does not know the {kind} attribute {attribute}")
        server.save_item(kind, handle, token, "bypass" if exists else "new")
        print(f"{kind} {name} {'updated' if exists else 'created'}")

    def merged_meta(kind, name, settings):
        """The object's own autoinstall_meta with ours set on top: keys put there by hand survive."""
        meta = {}
        if server.has_item(kind, name, token):
            current = server.get_item(kind, name)
            if isinstance(current.get("autoinstall_meta"), dict):
                meta.update(current["autoinstall_meta"])
        meta.update({k: v for k, v in settings.items() if v != ""})
        return meta

    distro = env["MF_DISTRO"]
    if env["MF_KERNEL"]:
        attrs = {
            "kernel": env["MF_KERNEL"],
            "initrd": env["MF_INITRD"],
            "breed": env["MF_BREED"],
            "os_version": env["MF_OS_VERSION"],
            "arch": env["MF_ARCH"],
        }
        if env["MF_TREE"]:
            attrs["autoinstall_meta"] = merged_meta("distro", distro, {"tree": env["MF_TREE"]})
        upsert("distro", distro, attrs)
    elif distro:
        if not server.has_item("distro", distro, token):
            fail(f"no distro {distro} in Cobbler: give --kernel and --initrd to create it")
        if env["MF_TREE"]:
            upsert("distro", distro, {"autoinstall_meta": merged_meta("distro", distro, {"tree": env["MF_TREE"]})})
    elif not server.has_item("profile", env["MF_PROFILE"], token):
        fail(f"the profile {env['MF_PROFILE']} does not exist yet: give --distro")

    profile_attrs = {
        "autoinstall": env["MF_TEMPLATE"],
        "autoinstall_meta": merged_meta("profile", env["MF_PROFILE"], {
            "metalfarm_ssh_key": env["MF_SSH_KEY"],
            "metalfarm_ntp_server": env["MF_NTP_SERVER"],
            "metalfarm_nfs_server": env["MF_NFS_SERVER"],
            "metalfarm_nfs_isos": env["MF_NFS_ISOS"],
            "metalfarm_nfs_steps": env["MF_NFS_STEPS"],
            "metalfarm_nfs_archive": env["MF_NFS_ARCHIVE"],
        }),
    }
    if distro:
        profile_attrs = {"distro": distro, **profile_attrs}
    upsert("profile", env["MF_PROFILE"], profile_attrs)
except xmlrpc.client.Fault as fault:
    fail(f"Cobbler refused: {fault.faultString}")
except OSError as err:
    fail(f"cannot reach Cobbler at {env['MF_URL']}: {err}")
PY
