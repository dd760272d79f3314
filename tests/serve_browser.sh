#!/usr/bin/env bash
# serve_browser.sh — the chat page of `bitnet serve` in a real browser: headless Chromium loads
# http://127.0.0.1:PORT/?q=... (the page sends q as the first message), and the DOM it dumps must
# hold the user's message and a non-empty streamed assistant reply; a screenshot of the same is
# written to $BUILD/serve_page.png (to look at). Skips with the reason when serve is not built
# or chromium is not installed (apt-get install chromium). The server is always killed on exit.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B=$BUILD/bitnet
if "$B" serve -h 2>&1 | grep -q "without HTTP support"; then echo "skip serve_browser: built without libmicrohttpd"; exit 0; fi
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$CHROME" ] || { echo "skip serve_browser: chromium is not installed (apt-get install chromium)"; exit 0; }
T=$(mktemp -d); SP=
trap '[ -n "$SP" ] && { kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; }; rm -rf "$T"' EXIT
"$B" serve -m models/bitnet-tinystories --port 0 -t 1 2>"$T/log" & SP=$!
URL=
for _ in $(seq 100); do URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/log" 2>/dev/null | head -n 1); [ -n "$URL" ] && break; sleep 0.1; done
[ -n "$URL" ] || { echo "FAIL serve_browser: the server did not start: $(cat "$T/log")"; exit 1; }
C=("$CHROME" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --user-data-dir="$T/prof"
   --window-size=1000,600)
PAGE="$URL/?q=Tell%20me%20a%20story."
# The first streamed token can come late on a loaded machine or a sanitizer build: up to three
# loads, each with a longer virtual-time budget; the last one's verdict counts.
for budget in 15000 40000 90000; do
    timeout 120 "${C[@]}" --virtual-time-budget=$budget --dump-dom "$PAGE" >"$T/dom.html" 2>"$T/chrome.err"
    verdict=$(python3 - "$T/dom.html" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
u = re.search(r'<div class="msg user">([^<]*)</div>', dom)
a = re.search(r'<div class="msg assistant[^"]*">([^<]*)</div>', dom)
if u and u.group(1) == "Tell me a story." and a and a.group(1).strip() and "error" not in a.group(0):
    print("ok serve_browser_dom: streamed reply of %d characters" % len(a.group(1)))
else:
    print("FAIL serve_browser_dom: user %r, assistant %r" % (u and u.group(0), a and a.group(0)[:200]))
PY
)
    case "$verdict" in ok*) break ;; esac
done
echo "${verdict:-FAIL serve_browser_dom: no verdict: $(tail -n 3 "$T/chrome.err")}"
C+=(--virtual-time-budget=$budget)
rm -f "$BUILD/serve_page.png"
timeout 60 "${C[@]}" --screenshot="$BUILD/serve_page.png" "$PAGE" >/dev/null 2>&1
if [ -s "$BUILD/serve_page.png" ]; then echo "ok serve_browser_screenshot: $BUILD/serve_page.png"; else echo "FAIL serve_browser_screenshot: no screenshot"; fi
