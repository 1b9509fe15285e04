#!/bin/sh
# BuildKit's SBOM generator protocol (docs/attestations/sbom-protocol.md in moby/buildkit):
# BuildKit runs this image with the build result mounted read-only at $BUILDKIT_SCAN_SOURCE
# (further targets, e.g. earlier stages, as directories under $BUILDKIT_SCAN_SOURCE_EXTRAS) and
# collects every $BUILDKIT_SCAN_DESTINATION/<scan>.spdx.json: one in-toto statement whose
# predicate is an SPDX document. An empty subject list lets BuildKit name the image itself.
#
# The document is minimal but valid SPDX 2.3: one package for the scanned file system and each
# regular file in it with its SHA1 (names that would need JSON escaping are left out).
set -eu
: "${BUILDKIT_SCAN_SOURCE:?BuildKit did not say what to scan}"
: "${BUILDKIT_SCAN_DESTINATION:?BuildKit did not say where to write}"

json_list() { # joins stdin lines with commas
  awk 'NR > 1 { printf "," } { printf "%s", $0 }'
}

scan() { # SOURCE_DIR SCAN_NAME
  src=$1 name=$2
  out=$BUILDKIT_SCAN_DESTINATION/$name.spdx.json
  list=$(mktemp)
  (cd "$src" && find . -xdev -type f | grep -v '["\\[:cntrl:]]' | LC_ALL=C sort | while IFS= read -r f; do
    printf '%s %s\n' "$(sha1sum "$f" | cut -d' ' -f1)" "$f"
  done) >"$list"
  namespace=$(sha256sum "$list" | cut -c1-32)
  files=$(awk '{ sha = $1; path = substr($0, length(sha) + 2)
    printf "{\"SPDXID\":\"SPDXRef-File-%d\",\"fileName\":\"%s\",\"checksums\":[{\"algorithm\":\"SHA1\",\"checksumValue\":\"%s\"}]}\n", NR, path, sha }' "$list" | json_list)
  contains=$(awk '{ printf "{\"spdxElementId\":\"SPDXRef-Package-rootfs\",\"relationshipType\":\"CONTAINS\",\"relatedSpdxElement\":\"SPDXRef-File-%d\"}\n", NR }' "$list" | json_list)
  count=$(wc -l <"$list" | tr -d ' ')
  cat >"$out" <<DOC
{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[],
"predicate":{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT",
"name":"brokkr-e2e-sbom-$name","documentNamespace":"https://brokkr.invalid/spdx/$name-$namespace",
"creationInfo":{"created":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","creators":["Tool: brokkr-e2e-sbom-generator-1"]},
"comment":"brokkr-e2e-sbom-generator: $count files",
"documentDescribes":["SPDXRef-Package-rootfs"],
"packages":[{"SPDXID":"SPDXRef-Package-rootfs","name":"$name","downloadLocation":"NOASSERTION","filesAnalyzed":false}],
"files":[$files],
"relationships":[{"spdxElementId":"SPDXRef-DOCUMENT","relationshipType":"DESCRIBES","relatedSpdxElement":"SPDXRef-Package-rootfs"}${contains:+,$contains}]}}
DOC
  rm -f "$list"
}

scan "$BUILDKIT_SCAN_SOURCE" "$(basename "$BUILDKIT_SCAN_SOURCE")"
if [ -n "${BUILDKIT_SCAN_SOURCE_EXTRAS:-}" ] && [ -d "$BUILDKIT_SCAN_SOURCE_EXTRAS" ]; then
  for extra in "$BUILDKIT_SCAN_SOURCE_EXTRAS"/*; do
    [ -d "$extra" ] && scan "$extra" "$(basename "$extra")"
  done
fi
