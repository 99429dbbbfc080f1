#!/usr/bin/env bash
# Assembles the root file system of the images' base layer from Debian packages, with no base
# image: the packages of DEBIAN_PACKAGES (images/versions.env) and their dependencies, extracted
# by mmdebstrap (no maintainer scripts run, no shell, no package manager in the result), plus the
# users, /tmp and the files a runtime expects. Like the "cc" images of distroless, it carries
# what a dynamically linked C++ program needs and nothing else.
#
# usage: images/base.sh OUT_DIR     (OUT_DIR is replaced; needs root and mmdebstrap)
set -euo pipefail
umask 022
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"
out="${1:?usage: images/base.sh OUT_DIR}"
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
root="$tmp/rootfs"

# Documentation except the copyright files, translations, manuals and glibc's character set
# converters (Node uses ICU, not iconv) are left out as they are unpacked.
mmdebstrap --quiet --variant=extract --include="$DEBIAN_PACKAGES" \
  --skip=cleanup/apt/cache \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' --dpkgopt='path-exclude=/usr/share/gdb/*' \
  --dpkgopt='path-exclude=/usr/share/gcc/*' --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*' \
  "$DEBIAN_SUITE" "$root" \
  "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" \
  "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main" \
  "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main"

# What is installed, one control file per package as distroless does (var/lib/dpkg/status.d/),
# so that vulnerability scanners (Trivy, Grype) list the packages; and a plain list for people.
mkdir -p "$root/var/lib/dpkg/status.d"
: >"$tmp/packages.txt"
for deb in "$root"/var/cache/apt/archives/*.deb; do
  pkg="$(dpkg-deb -f "$deb" Package)"
  # mawk comes in only because base-files' maintainer scripts (never run here) need an awk: its
  # files go, and it is not recorded as installed.
  if [[ "$pkg" == mawk ]]; then
    dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./||p' | while read -r f; do
      if [[ -f "$root/$f" || -L "$root/$f" ]]; then rm -f "$root/$f"; fi
    done
    continue
  fi
  dpkg-deb -f "$deb" | awk '{ print } /^Package:/ { print "Status: install ok installed" }' \
    >"$root/var/lib/dpkg/status.d/$pkg"
  printf '%s %s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >>"$tmp/packages.txt"
done
LC_ALL=C sort -o "$tmp/packages.txt" "$tmp/packages.txt"

# Everything mmdebstrap leaves for its own use or copies from this host (resolv.conf, hostname):
# an image must not carry the build machine's settings. /dev is the runtime's.
rm -rf "${root:?}"/dev "$root"/etc/apt "$root"/etc/dpkg "$root"/etc/resolv.conf "$root"/etc/hostname \
  "$root"/etc/fstab "$root"/var/cache/apt "$root"/var/lib/apt "$root"/var/log/*
find "$root/var/lib/dpkg" -mindepth 1 -maxdepth 1 ! -name status.d -exec rm -rf {} +
# Directories left empty by the exclusions above.
find "$root/usr/share" "$root/usr/lib" -mindepth 1 -type d -empty -delete

# Users: root, and nonroot (65532, as in distroless images), which the images run as and which the
# chart and the operator's worker pods name in runAsUser. No login shell exists.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
# Look names up in /etc/hosts before DNS (glibc's default without this file is DNS first).
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
mkdir -p "$root/tmp" "$root/root" "$root/home/nonroot"

rm -rf "$out"
mv "$tmp" "$out"
echo "base: $(wc -l <"$out/packages.txt") Debian packages ($(tr '\n' ' ' <"$out/packages.txt"))"
