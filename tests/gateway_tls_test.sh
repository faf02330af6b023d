#!/usr/bin/env bash
# radguard gateway over DICOM TLS against DCMTK's tools on loopback, with certificates made
# here by openssl: storescu +tls sends to the gateway (a plain association and a client whose
# certificate another CA signed are refused), the gateway forwards over TLS to storescp +tls
# (a destination whose certificate another CA signed, or the same CA for another name, is
# refused: nothing is sent to it, the outbox waits, then drains to the right one; with
# --tls-forward-name the certificate's name is given). Also --allow-host from the command line.
set -euo pipefail
radguard=$1
source "$(dirname "${BASH_SOURCE[0]}")/gateway_common.sh" tls
field_above() { [ "$(status_field "$1" "$2")" -gt "$3" ]; }
count() { find "$1" -type f 2>/dev/null | wc -l; }

# --- certificates: a CA, the gateway, a sender, a destination; a rogue CA with its own sender
# and destination.
cd "$work"
ca() {  # ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.pem" >/dev/null 2>&1
}
leaf() {  # leaf NAME CA [SUBJECT_ALT_NAMES]
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" \
    >/dev/null 2>&1
  local names=()
  if [ -n "${3:-}" ]; then
    printf 'subjectAltName=%s\n' "$3" >"$1.ext"
    names=(-extfile "$1.ext")
  fi
  openssl x509 -req -sha256 -days 2 -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -CAcreateserial "${names[@]}" -out "$1.pem" >/dev/null 2>&1
}
# The destination's certificate names the address the gateway calls it by; "elsewhere" has a
# certificate from the same CA for another node (another name and address).
ca ca && leaf gw ca && leaf sender ca && leaf dest ca "IP:127.0.0.1,DNS:dest.example.org"
leaf elsewhere ca "DNS:elsewhere.example.org,IP:192.0.2.9"
ca rogue && leaf rsender rogue && leaf rdest rogue "IP:127.0.0.1"
cd - >/dev/null

"$radguard" keygen "$work/k.key" >/dev/null
mkdir -p "$work/in"
for i in 1 2 3; do
  cp "$samples/CT_small.dcm" "$work/in/ct$i.dcm"
done
dcmodify -nb -gin "$work/in"/*.dcm

gport=$(free_port)
dport=$(free_port)
tls_gw=(--tls-cert "$work/gw.pem" --tls-key "$work/gw.key" --tls-trust "$work/ca.pem")
good=(+tls "$work/sender.key" "$work/sender.pem" +cf "$work/ca.pem")

# Settings refused before anything listens: a host name in --allow-host, TLS files that do
# not match, TLS for forwarding without --forward.
if "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --output "$work/o" --allow-host localhost >"$work/bad.log" 2>&1; then
  fail "a host name was accepted by --allow-host"
fi
grep -q 'address' "$work/bad.log" || fail "the --allow-host refusal does not say why"
if "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --output "$work/o" --tls-cert "$work/gw.pem" --tls-key "$work/sender.key" \
    --tls-trust "$work/ca.pem" --tls-for listen >"$work/bad.log" 2>&1; then
  fail "a key that does not match the certificate was accepted"
fi
grep -q 'does not match' "$work/bad.log" || fail "the key mismatch is not named"
if "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --output "$work/o" "${tls_gw[@]}" >"$work/bad.log" 2>&1; then
  fail "TLS for forwarding without --forward was accepted"
fi
if "$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
    --forward "DEST@127.0.0.1:$dport" --tls-forward-name dest.example.org >"$work/bad.log" 2>&1; then
  fail "--tls-forward-name without TLS was accepted"
fi
grep -q 'needs TLS' "$work/bad.log" || fail "the --tls-forward-name refusal does not say why"
[ ! -e "$work/spool" ] || fail "a refused start left a spool"

# --- the gateway: TLS in and out, loopback allowed
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
  --forward "DEST@127.0.0.1:$dport" --retry-max 1 --allow-calling SENDER \
  --allow-host 127.0.0.0/8 "${tls_gw[@]}" >"$work/gw.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 echoscu "${good[@]}" -aet SENDER -aec RG 127.0.0.1 "$gport" ||
  fail "the gateway did not answer C-ECHO over TLS"
grep -q 'TLS only' "$work/gw.log" || fail "the start line does not say TLS"

# A plain association to the TLS port is refused.
if storescu -to 5 -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/ct1.dcm" >"$work/plain.log" 2>&1; then
  fail "a plain association was accepted by a TLS node"
fi
# A client whose certificate another CA signed is refused.
if storescu -to 5 +tls "$work/rsender.key" "$work/rsender.pem" +cf "$work/ca.pem" \
    -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/ct1.dcm" >"$work/rogue-in.log" 2>&1; then
  fail "a client certificate of another CA was accepted"
fi
# A client with no certificate at all (anonymous TLS) is refused.
if storescu -to 5 +tla +cf "$work/ca.pem" -aet SENDER -aec RG 127.0.0.1 "$gport" \
    "$work/in/ct1.dcm" >"$work/anon-in.log" 2>&1; then
  fail "a client without a certificate was accepted"
fi
[ "$(status_field "$work/spool" incoming)" = 0 ] && [ "$(status_field "$work/spool" outbox)" = 0 ] ||
  fail "a refused association left an instance"
# The sender with the right certificate: every instance acknowledged.
storescu "${good[@]}" -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in"/*.dcm >"$work/send.log" 2>&1 ||
  fail "storescu +tls failed"
wait_for 30 field_is "$work/spool" outbox 3 || fail "not de-identified into the outbox"

# --- outbound: a destination whose certificate another CA signed is refused (nothing sent)
mkdir -p "$work/rogue-dest" "$work/dest"
storescp +tls "$work/rdest.key" "$work/rdest.pem" +cf "$work/rogue.pem" -aet DEST \
  -od "$work/rogue-dest" "$dport" >"$work/rogue-dest.log" 2>&1 &
rogue=$!
pids+=("$rogue")
wait_for 20 field_above "$work/spool" outbox_retrying 0 || fail "no failed forward to the rogue destination"
sleep 2
[ "$(count "$work/rogue-dest")" = 0 ] || fail "an instance reached a destination of another CA"
[ "$(status_field "$work/spool" outbox)" = 3 ] || fail "the outbox lost an instance"
kill "$rogue"; wait "$rogue" 2>/dev/null || true

# A destination whose certificate the trusted CA issued for another node (the host name check):
# refused too, nothing sent.
storescp -v +tls "$work/elsewhere.key" "$work/elsewhere.pem" +cf "$work/ca.pem" -aet DEST \
  -od "$work/rogue-dest" "$dport" >"$work/elsewhere-dest.log" 2>&1 &
elsewhere=$!
pids+=("$elsewhere")
sleep 4  # the gateway tries again each second (--retry-max 1)
[ "$(count "$work/rogue-dest")" = 0 ] || fail "an instance reached a destination with a certificate for another name"
[ "$(status_field "$work/spool" outbox)" = 3 ] || fail "the outbox lost an instance (other name)"
grep -q 'Association Received' "$work/elsewhere-dest.log" &&
  fail "an association was made with a destination with a certificate for another name"
kill "$elsewhere"; wait "$elsewhere" 2>/dev/null || true

# The right destination: the outbox drains over TLS.
storescp +tls "$work/dest.key" "$work/dest.pem" +cf "$work/ca.pem" -aet DEST -od "$work/dest" \
  "$dport" >"$work/dest.log" 2>&1 &
dest=$!
pids+=("$dest")
wait_for 30 field_is "$work/spool" outbox 0 || fail "the outbox did not drain over TLS"
[ "$(count "$work/dest")" = 3 ] || fail "the destination did not get the three instances"
dcmdump "$work/dest"/* >"$work/dest.dump" 2>&1
grep -q -e 'CompressedSamples' -e '1CT1' -e '1\.3\.6\.1\.4\.1\.5962' "$work/dest.dump" &&
  fail "an identifying value was forwarded"

kill -TERM "$gw"
rc=0; wait "$gw" || rc=$?
[ "$rc" = 0 ] || fail "SIGTERM exit status $rc"
kill "$dest"; wait "$dest" 2>/dev/null || true
grep -q -e 'CompressedSamples' -e '1CT1' "$work/gw.log" && fail "a value in the log"

# --- --tls-forward-name: the name the destination's certificate must carry, when the gateway
# calls it by another (here its address): "elsewhere" is accepted when named.
rm -rf "$work/spool"
mkdir -p "$work/dest-named"
storescp +tls "$work/elsewhere.key" "$work/elsewhere.pem" +cf "$work/ca.pem" -aet DEST \
  -od "$work/dest-named" "$dport" >"$work/named-dest.log" 2>&1 &
pids+=("$!")
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
  --forward "DEST@127.0.0.1:$dport" --retry-max 1 "${tls_gw[@]}" --tls-for forward \
  --tls-forward-name elsewhere.example.org >"$work/gw-named.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 echoscu -aet SENDER -aec RG 127.0.0.1 "$gport" || fail "the gateway (plain listener) did not start"
storescu -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/ct1.dcm" >"$work/send-named.log" 2>&1 ||
  fail "storescu (plain) failed"
wait_for 30 bash -c "[ \$(find '$work/dest-named' -type f | wc -l) = 1 ]" ||
  fail "no forward to the destination named by --tls-forward-name"
kill -TERM "$gw"; wait "$gw" || fail "SIGTERM exit status (named)"

# --- --allow-host: a listed network that is not loopback refuses the loopback sender
rm -rf "$work/spool"
"$radguard" gateway --listen "$gport" --ae-title RG --spool "$work/spool" --key "$work/k.key" \
  --output "$work/out" --allow-host 192.0.2.0/24 >"$work/gw-host.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_for 20 grep -q 'listening' "$work/gw-host.log" || fail "the gateway did not start"
if storescu -to 5 -aet SENDER -aec RG 127.0.0.1 "$gport" "$work/in/ct1.dcm" >"$work/host.log" 2>&1; then
  fail "a peer address not on --allow-host was accepted"
fi
wait_for 10 grep -q 'refused an association from 127.0.0.1: the address is not allowed' \
  "$work/gw-host.log" || fail "the refusal is not logged with the address"
kill -TERM "$gw"; wait "$gw" || fail "SIGTERM exit status (allow-host)"
[ "$(count "$work/out")" = 0 ] || fail "an instance from a refused address was written"

echo "gateway TLS: inbound (plain, other CA, no certificate refused), outbound (other CA, other name refused, drained over TLS, --tls-forward-name), allow-host ok"
