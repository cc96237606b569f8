#!/usr/bin/env bash
# Open Images V6/V7 training photos (JPEG, ~1024 px; CC BY 2.0 per image) → PNG shards.
# The public bucket serves the images as 16 archives train_0 … train_f (~46 GB each);
# take as many as you need. Downscaling (shorter side 512 by default) removes JPEG
# artefacts, the usual practice for learned-compression training data.
#
#   PARTS="0 1" RESIZE=512 bash data/openimages.sh [OUT=data/openimages]
#   then: data.train.shards='data/openimages/shards/train-{000000..NNNNNN}.tar' (printed below)
#
# Needs curl. Each archive is fetched, packed into shards and deleted before the next,
# so the disk holds at most one archive plus the shards.
set -euo pipefail
OUT=${1:-data/openimages}
HDC=${HDC:-hdc}
PARTS=${PARTS:-0}
RESIZE=${RESIZE:-512}
BASE=${BASE:-https://open-images-dataset.s3.amazonaws.com/tar}
mkdir -p "$OUT/download" "$OUT/shards"
for part in $PARTS; do
  archive="$OUT/download/train_$part.tar.gz"
  if [ ! -f "$archive" ]; then
    curl -fL --retry 3 -C - -o "$archive.part" "$BASE/train_$part.tar.gz"
    mv "$archive.part" "$archive"
  fi
  rm -rf "$OUT/raw" && mkdir -p "$OUT/raw"
  tar -xzf "$archive" -C "$OUT/raw"
  "$HDC" shards "$OUT/raw" "$OUT/shards" --prefix "train_$part" --resize "$RESIZE" --max-bytes 500000000
  rm -rf "$OUT/raw" "$archive"
done
echo "shards: $OUT/shards/ — list them with '::', e.g."
echo "  data.train.shards='$OUT/shards/train_0-{000000..NNNNNN}.tar::$OUT/shards/train_1-{000000..NNNNNN}.tar'"
echo "  or simply data.train.shards='$OUT/shards/*.tar'"
