#!/usr/bin/env bash
# Builds the Debian packages: armhf (the GOARM=6 binary, which runs on every
# Raspberry Pi OS 32-bit, Pi Zero included), arm64 and amd64 (for a PC), with
# nfpm (pinned below, fetched through the Go module proxy).
#
# Usage: deploy/package.sh [OUTDIR] [ARCH...]   (default dist/, all three)
set -euo pipefail
cd "$(dirname "$0")/.."

nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0
out=${1:-dist}
shift || true
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(armhf arm64 amd64)

# A Debian version must start with a digit: a tag v1.2.3 gives 1.2.3, an
# untagged commit 0.0~gitYYYYMMDD.HASH (which sorts below any release).
if tag=$(git describe --tags --exact-match 2>/dev/null); then
  version=${tag#v}
else
  version="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
fi
version=${PKG_VERSION:-$version}

# Everything temporary is private to this run, so that two runs (a build and
# the packaging test) never share a file; the tools' output goes to stderr,
# stdout carries only the packages' paths.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VERSION=$version bash deploy/build.sh "$work/bin" >&2
sed "s|dist/.pkg/fieldgate|$work/fieldgate|" deploy/nfpm.yaml >"$work/nfpm.yaml"
mkdir -p "$out"
for arch in "${arches[@]}"; do
  case $arch in
    armhf) bin=$work/bin/fieldgate-linux-armv6 ;;
    arm64) bin=$work/bin/fieldgate-linux-arm64 ;;
    amd64) bin=$work/bin/fieldgate-linux-amd64 ;;
    *) echo "unknown architecture $arch (want armhf, arm64 or amd64)" >&2; exit 2 ;;
  esac
  cp "$bin" "$work/fieldgate"
  PKG_ARCH=$arch PKG_VERSION=$version \
    GOFLAGS= go run "$nfpm" package --config "$work/nfpm.yaml" --packager deb --target "$out/fieldgate_${version}_${arch}.deb" >&2
  printf '%s\n' "$out/fieldgate_${version}_${arch}.deb"
done
