#!/usr/bin/env bash
# radguard serve over HTTP, as a script (or an attacker) meets it: a real server on a free
# port, curl for the client. Token, Host, Origin, upload size and zip names refused; a CD
# shared through the API; the private folder gone after DELETE and after SIGTERM; nothing
# listening but loopback.
#   serve_api_test.sh RADGUARD SERVE_MAKE_CD
set -euo pipefail
radguard=$1
make_cd=$2
work=$(mktemp -d /tmp/radguard-serve-api.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.err" ] && cat "$work/server.err" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is missing"

# A server with a 2 MiB upload limit and its own temporary folder (to look into it).
mkdir -p "$work/tmp"
TMPDIR="$work/tmp" "$radguard" serve --max-upload-mb 2 -j 2 >"$work/server.out" 2>"$work/server.err" &
pid=$!
for _ in $(seq 100); do grep -q 'token=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*/?token=[0-9a-f]*' "$work/server.out") || fail "no address printed"
port=$(echo "$url" | sed 's|http://127.0.0.1:\([0-9]*\)/.*|\1|')
token=${url##*token=}
base="http://127.0.0.1:$port"
[ ${#token} -eq 32 ] || fail "token is not 128 bits of hex"
root=$(ls -d "$work/tmp"/radguard-serve-*) || fail "no private folder"
[ "$(stat -c %a "$root")" = 700 ] || fail "private folder mode $(stat -c %a "$root")"
auth=(-H "Authorization: Bearer $token")
code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }

# --- listens on loopback only --------------------------------------------------------------
listeners=$(ss -ltnH "sport = :$port" | awk '{print $4}')
[ "$listeners" = "127.0.0.1:$port" ] || fail "listening on: $listeners"
ip=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$ip" ]; then
  rc=0; curl -s -m 3 -o /dev/null "http://$ip:$port/" || rc=$?
  [ "$rc" -ne 0 ] || fail "reachable on $ip"
fi

# --- the token -------------------------------------------------------------------------------
[ "$(code "$base/")" = 401 ] || fail "page without token"
[ "$(code "$base/api/jobs/0123456789abcdef0123456789abcdef")" = 401 ] || fail "API without token"
# The token with its last character changed (to 0, or to 1 where it already ends in 0).
wrong="${token%?}0"; [ "$wrong" != "$token" ] || wrong="${token%?}1"
[ "$(code -H "Authorization: Bearer $wrong" "$base/")" = 401 ] || fail "wrong token accepted"
# A small upload: a large one may be cut off before its answer is read (the size has its own test).
head -c 4096 /dev/urandom >"$work/small.bin"
[ "$(code -X POST -F "files=@$work/small.bin" "$base/api/jobs")" = 401 ] || fail "upload without token"
[ "$(code "$base/?token=$token")" = 303 ] || fail "token in the address does not set the cookie"
curl -s -D "$work/headers" -o /dev/null "$base/?token=$token"
grep -qi "^set-cookie: radguard_token=$token; Path=/; HttpOnly; SameSite=Strict" "$work/headers" ||
  fail "cookie not HttpOnly/SameSite=Strict"
grep -qi '^location: /\s*$' "$work/headers" || fail "the token stays in the address"
[ "$(code -H "Cookie: radguard_token=$token" "$base/")" = 200 ] || fail "page with the cookie"
grep -q '<title>radguard' "$work/body" || fail "not the page"
curl -s -D "$work/headers" -o /dev/null "${auth[@]}" "$base/app.js"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self'" "$work/headers" || fail "no strict CSP"
grep -qi '^x-content-type-options: nosniff' "$work/headers" || fail "no nosniff"
grep -qi '^content-type: text/javascript' "$work/headers" || fail "app.js type"

# --- Host and Origin (DNS rebinding, other sites), refused before the token is looked at -----
[ "$(code "${auth[@]}" -H "Host: evil.example:$port" "$base/")" = 403 ] || fail "foreign Host"
[ "$(code -H "Host: evil.example:$port" "$base/")" = 403 ] || fail "foreign Host without token"
[ "$(code "${auth[@]}" -H "Host: 127.0.0.1" "$base/")" = 403 ] || fail "Host without port"
[ "$(code "${auth[@]}" -H "Host: localhost:$port" "$base/")" = 200 ] || fail "localhost refused"
[ "$(code "${auth[@]}" -H "Origin: http://evil.example" -X POST -F "files=@$work/small.bin" "$base/api/jobs")" = 403 ] ||
  fail "foreign Origin"
[ "$(code "${auth[@]}" -H "Origin: null" "$base/")" = 403 ] || fail "Origin null"
[ "$(code "${auth[@]}" -H "Sec-Fetch-Site: cross-site" "$base/")" = 403 ] || fail "cross-site fetch"
[ "$(code "${auth[@]}" -H "Origin: $base" "$base/")" = 200 ] || fail "own Origin refused"

# --- sizes, names, zips ---------------------------------------------------------------------
head -c $((3 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
[ "$(code "${auth[@]}" -X POST -F "files=@$work/big.bin" "$base/api/jobs")" = 413 ] || fail "oversized multipart"
[ "$(code "${auth[@]}" -X POST -H 'Content-Type: application/zip' --data-binary "@$work/big.bin" "$base/api/jobs")" = 413 ] ||
  fail "oversized zip body"
# The same without "Expect: 100-continue" (as a browser sends): the body is read and dropped,
# and the answer is a 413, not a reset connection.
[ "$(code "${auth[@]}" -H 'Expect:' -X POST -F "files=@$work/big.bin" "$base/api/jobs")" = 413 ] ||
  fail "oversized multipart sent without waiting"
[ "$(code "${auth[@]}" -H 'Expect:' -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/zip' --data-binary "@$work/big.bin" "$base/api/jobs")" = 413 ] ||
  fail "oversized chunked body sent without waiting"
# Only an upload carries a body: the library would read any other chunked body whole.
[ "$(code "${auth[@]}" -X DELETE -H 'Transfer-Encoding: chunked' --data-binary "@$work/small.bin" "$base/api/jobs/0123456789abcdef0123456789abcdef")" = 413 ] ||
  fail "a body on a DELETE accepted"
# Chunked, no Content-Length: counted while it arrives.
[ "$(code "${auth[@]}" -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/zip' --data-binary "@$work/big.bin" "$base/api/jobs")" = 413 ] ||
  fail "oversized chunked body"
echo x >"$work/x.dcm"
[ "$(code "${auth[@]}" -X POST -F "files=@$work/x.dcm;filename=../../etc/x" "$base/api/jobs")" = 400 ] ||
  fail "upload name with .. accepted"
[ "$(code "${auth[@]}" -X POST -F "files=@$work/x.dcm;filename=/etc/x" "$base/api/jobs")" = 400 ] ||
  fail "absolute upload name accepted"
[ "$(code "${auth[@]}" -X POST -H 'Content-Type: text/plain' --data 'x' "$base/api/jobs")" = 415 ] ||
  fail "plain body accepted"
python3 - "$work" <<'PY'
import sys, zipfile
w = sys.argv[1]
with zipfile.ZipFile(w + "/climb.zip", "w") as z:
    z.writestr("CD/ok.dcm", "x")
    z.writestr(zipfile.ZipInfo("../../DOE_JOHN.dcm"), "y")
with zipfile.ZipFile(w + "/abs.zip", "w") as z:
    z.writestr(zipfile.ZipInfo("/tmp/evil.dcm"), "y")
PY
for z in climb abs; do
  [ "$(code "${auth[@]}" -X POST -F "files=@$work/$z.zip" "$base/api/jobs")" = 400 ] || fail "$z.zip accepted"
  grep -q 'refused' "$work/body" || fail "$z.zip: no reason"
  grep -q 'DOE' "$work/body" && fail "$z.zip: the entry's name is quoted"
  [ "$(code "${auth[@]}" -X POST -H 'Content-Type: application/zip' --data-binary "@$work/$z.zip" "$base/api/jobs")" = 400 ] ||
    fail "$z.zip body accepted"
done
[ -z "$(ls -A "$root")" ] || fail "refused uploads left files: $(ls "$root")"
[ -f "$work/tmp/DOE_JOHN.dcm" ] && fail "a zip entry climbed out"

# --- a CD through the API --------------------------------------------------------------------
"$make_cd" "$work/cd" >/dev/null
args=()
while IFS= read -r f; do args+=(-F "files=@$f;filename=${f#"$work/"}"); done < <(find "$work/cd" -type f)
[ "$(code "${auth[@]}" -X POST "${args[@]}" "$base/api/jobs")" = 202 ] || fail "upload: $(cat "$work/body")"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/body")
for _ in $(seq 600); do
  code "${auth[@]}" "$base/api/jobs/$id" >/dev/null
  grep -q '"state": "\(done\|failed\)"' "$work/body" && break
  sleep 0.2
done
grep -q '"state": "done"' "$work/body" || fail "job: $(cat "$work/body")"
cp "$work/body" "$work/job.json"
for secret in DOE PID12345 19300102 Elsewhere "$work"; do
  grep -q "$secret" "$work/job.json" && fail "job status holds $secret"
done
python3 - "$work/job.json" <<'PY' || fail "job report: $(cat "$work/job.json")"
import json, sys
j = json.load(open(sys.argv[1]))
r = j["report"]
assert r["files_shared"] >= 1, r
assert r["images_redacted"] == 1, r
assert r["not_images"] >= 2, r            # AUTORUN.INF, README.TXT
assert r["dicomdirs_replaced"] == 1, r
assert "output" not in r, r
assert len(j["previews"]) >= 1, j
PY
preview=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["previews"][0]["url"])' "$work/job.json")
[ "$(code "${auth[@]}" "$base$preview")" = 200 ] || fail "preview"
head -c 4 "$work/body" | grep -q PNG || fail "preview is not a PNG"
[ "$(code "${auth[@]}" "$base/api/jobs/$id/previews/p999.png")" = 404 ] || fail "unknown preview"
# The picture from before (the name still readable) is served to the page, kept outside the
# copy (owner-only), and never in the zip.
before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["previews"][0]["before"])' "$work/job.json")
[[ $before == /api/jobs/$id/previews/b1.png ]] || fail "no picture from before: $before"
[ "$(code "${auth[@]}" "$base$before")" = 200 ] || fail "picture from before"
head -c 4 "$work/body" | grep -q PNG || fail "the picture from before is not a PNG"
[ "$(code "${auth[@]}" "$base/api/jobs/$id/previews/b999.png")" = 404 ] || fail "unknown before"
[ "$(stat -c %a "$(find "$work/tmp" -name b1.png | head -1)")" = 600 ] || fail "before not 0600"
[ "$(code "${auth[@]}" "$base/api/jobs/$id/../../../etc/passwd")" = 404 ] || fail "path climbing"
[ "$(code "${auth[@]}" "$base/api/jobs/$id/result.zip")" = 200 ] || fail "result.zip"
cp "$work/body" "$work/result.zip"
mkdir "$work/unzipped" && (cd "$work/unzipped" && unzip -q ../result.zip)
[ -f "$work/unzipped/DICOMDIR" ] || fail "no DICOMDIR in the copy"
[ -z "$(find "$work/unzipped" -name 'b*.png')" ] || fail "a picture from before is in the copy"
while IFS= read -r f; do
  for secret in DOE PID12345 19300102 Elsewhere; do
    grep -q "$secret" "$f" && fail "$secret in ${f#"$work/"}"
  done
done < <(find "$work/unzipped" -type f)
dcmdump +r "$work/unzipped/DICOM/ST000001/SE000001/IM000001" >/dev/null 2>&1 ||
  dcmdump "$(find "$work/unzipped/DICOM" -type f | head -1)" >/dev/null || fail "copy not DICOM"
job_dir=$(ls -d "$root"/job-*)
[ "$(stat -c %a "$job_dir")" = 700 ] || fail "job folder mode"
[ "$(code "${auth[@]}" -X DELETE "$base/api/jobs/$id")" = 200 ] || fail "DELETE"
[ ! -e "$job_dir" ] || fail "job folder left after DELETE"
[ "$(code "${auth[@]}" "$base/api/jobs/$id")" = 404 ] || fail "deleted job still answers"
[ "$(code "${auth[@]}" "$base/api/jobs/$id/result.zip")" = 404 ] || fail "deleted zip still served"

# --- the same CD as one zip, as a body and as a multipart file: unpacked and shared ----------
(cd "$work/cd" && python3 -c 'import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for d, _, fs in os.walk("."):
        for f in fs: z.write(os.path.join(d, f))' "$work/cd.zip")
for how in body multipart; do
  if [ "$how" = body ]; then
    st=$(code "${auth[@]}" -X POST -H 'Content-Type: application/zip' --data-binary "@$work/cd.zip" "$base/api/jobs")
  else
    st=$(code "${auth[@]}" -X POST -F "files=@$work/cd.zip" "$base/api/jobs")
  fi
  [ "$st" = 202 ] || fail "zip $how upload: $(cat "$work/body")"
  zid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/body")
  for _ in $(seq 600); do
    code "${auth[@]}" "$base/api/jobs/$zid" >/dev/null
    grep -q '"state": "\(done\|failed\)"' "$work/body" && break
    sleep 0.2
  done
  grep -q '"state": "done"' "$work/body" || fail "zip $how job: $(cat "$work/body")"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["report"]; assert r["files_shared"] >= 1, r' \
    "$work/body" || fail "zip $how: nothing shared"
  [ "$(code "${auth[@]}" -X DELETE "$base/api/jobs/$zid")" = 200 ] || fail "zip $how DELETE"
done

# --- SIGTERM removes everything ----------------------------------------------------------------
[ "$(code "${auth[@]}" -X POST "${args[@]}" "$base/api/jobs")" = 202 ] || fail "second upload"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "serve exited $rc on SIGTERM"
[ ! -e "$root" ] || fail "private folder left after SIGTERM: $(find "$root" | head)"
for secret in DOE PID12345 19300102 "$id"; do
  grep -q "$secret" "$work/server.out" "$work/server.err" && fail "the log holds $secret"
done
echo "serve API test passed"
