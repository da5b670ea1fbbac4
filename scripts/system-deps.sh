#!/usr/bin/env bash
# Install the system packages onemap needs: PostgreSQL + PostGIS (matching the installed
# PostgreSQL major version), Mosquitto (the MQTT broker of the live feed), Chromium for
# browser tests, a CJK font, GDAL's tools, Pango (WeasyPrint's text layout, for PDF
# reports) and poppler-utils (pdftoppm and pdftotext: the report tests read the PDFs).
# As root on Debian/Ubuntu it runs apt-get; otherwise it prints the exact command.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

major=""
if command -v pg_config >/dev/null 2>&1; then
  major=$(pg_config --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')
elif ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  major=$(ls /usr/lib/postgresql | sort -n | tail -1)
fi

if command -v dpkg-query >/dev/null 2>&1; then
  if [ -n "$major" ]; then
    have_pkg "postgresql-$major" || need+=("postgresql-$major")
    have_pkg "postgresql-$major-postgis-3" || need+=("postgresql-$major-postgis-3")
  else
    need+=(postgresql postgis)
  fi
  have_pkg chromium || need+=(chromium)
  have_pkg fonts-noto-cjk || need+=(fonts-noto-cjk)
  have_pkg gdal-bin || need+=(gdal-bin)
  have_pkg mosquitto || need+=(mosquitto)
  have_pkg libpango-1.0-0 || need+=(libpango-1.0-0)
  have_pkg libpangoft2-1.0-0 || need+=(libpangoft2-1.0-0)
  have_pkg poppler-utils || need+=(poppler-utils)
  if [ ${#need[@]} -eq 0 ]; then
    echo "system packages: all present"
    exit 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
    # Debian's postgresql-common may create and start a default cluster we do not use, and
    # the mosquitto package a system broker on port 1883: onemap runs its own of each, on
    # ports of its own (.onemap/pg/port, .onemap/mqtt/port), and relies on neither.
    exit 0
  fi
  echo "missing system packages; run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi

if command -v initdb >/dev/null 2>&1 && command -v mosquitto >/dev/null 2>&1 \
    && command -v pdftoppm >/dev/null 2>&1 \
    && [ -x /usr/bin/chromium ]; then
  echo "system packages: not a Debian system; using what is on PATH"
  exit 0
fi
echo "install PostgreSQL with PostGIS, Mosquitto, Chromium, Pango and poppler, e.g. 'conda env create -f environment.yml'" >&2
exit 1
