#!/usr/bin/env bash
# A private CA and a server certificate for Mosquitto's TLS listener (8883), made with openssl.
#
#   deploy/mosquitto/make-certs.sh OUT_DIR BROKER_HOSTNAME [EXTRA_NAME ...]
#
# OUT_DIR gets ca.crt (copy it to every edge device: mqtt.tls.ca_file), ca.key (keep it offline: it signs
# server certificates), server.crt and server.key (Mosquitto's). Extra names are host names or IP addresses
# the devices may also use to reach the broker; localhost and 127.0.0.1 are always included.
# Existing CA files are reused, so renewing the server certificate does not touch the devices.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR BROKER_HOSTNAME [EXTRA_NAME ...]" >&2
  exit 2
fi
out=$1
host=$2
shift 2
days_ca=${CA_DAYS:-3650}
days_server=${SERVER_DAYS:-825}

command -v openssl >/dev/null || { echo "openssl is not installed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
umask 077

san="DNS:${host},DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
done

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
  openssl req -x509 -new -newkey rsa:3072 -nodes -sha256 -days "$days_ca" \
    -subj "/O=FieldLine/CN=FieldLine MQTT CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
  echo "created CA $out/ca.crt"
fi

ext=$(mktemp)
trap 'rm -f "$ext" "$out/server.csr"' EXIT
cat > "$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT
openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/O=FieldLine/CN=$host" \
  -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days_server" -sha256 -extfile "$ext" -out "$out/server.crt" 2>/dev/null
rm -f "$out/ca.srl"
chmod 644 "$out/ca.crt" "$out/server.crt"
chmod 640 "$out/server.key"
chmod 600 "$out/ca.key"
openssl verify -CAfile "$out/ca.crt" "$out/server.crt" >/dev/null
echo "created $out/server.crt for $san (valid $days_server days)"
echo "Mosquitto must be able to read server.key: chgrp mosquitto $out/server.key (compose: chgrp 1883)"
