#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, the main module's
# tests under the race detector (fuzz seed corpora run as ordinary tests),
# and the interop module's tests against go-libp2p. README and .ci/run
# both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || { echo "test.sh: Go 1.26 is needed (https://go.dev/dl)"; exit 1; }
export PATH="$(go env GOPATH)/bin:$PATH"

STATICCHECK_VERSION=v0.8.2
if ! staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "== installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

modules=(. interop)

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
	echo "gofmt would change:"; echo "$bad"; exit 1
fi

for m in "${modules[@]}"; do
	[ -f "$m/go.mod" ] || continue
	echo "== go vet ($m)"
	(cd "$m" && go vet ./...)
	echo "== staticcheck ($m)"
	(cd "$m" && staticcheck ./...)
done

echo "== go test -race (main module)"
go test -race -shuffle=on -timeout 20m ./...

if [ -f interop/go.mod ]; then
	echo "== go test -race (interop against go-libp2p)"
	(cd interop && go test -race -shuffle=on -timeout 20m ./...)
fi
echo "== all checks passed"
