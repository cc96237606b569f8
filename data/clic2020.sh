#!/usr/bin/env bash
# CLIC 2020 (professional + mobile training sets, ~2,000 PNG photos; professional
# validation, 41 PNGs — one of the paper's test sets) → training shards + validation folder.
#
#   bash data/clic2020.sh [OUT=data/clic2020]
#   then: data.train.shards='data/clic2020/shards/train-{000000..0000NN}.tar' (printed below)
#         data.val.folder=data/clic2020/professional_valid
set -euo pipefail
OUT=${1:-data/clic2020}
HDC=${HDC:-hdc}
BASE=${BASE:-https://data.vision.ee.ethz.ch/cvl/clic}
mkdir -p "$OUT/download"
fetch() {  # fetch ZIP into download/ (resumable) and unpack it into $OUT/$2
  local zip=$1 dest=$2
  if [ ! -f "$OUT/download/$zip" ]; then
    curl -fL --retry 3 -C - -o "$OUT/download/$zip.part" "$BASE/$zip"
    mv "$OUT/download/$zip.part" "$OUT/download/$zip"
  fi
  mkdir -p "$OUT/$dest"
  unzip -q -n "$OUT/download/$zip" -d "$OUT/$dest"
}
fetch professional_train_2020.zip train_raw/professional
fetch mobile_train_2020.zip train_raw/mobile
fetch professional_valid_2020.zip professional_valid_raw
# The zips unpack to train/ and valid/ folders; the shard writer searches recursively.
"$HDC" shards "$OUT/train_raw" "$OUT/shards" --prefix train --max-samples 200
rm -rf "$OUT/professional_valid"
mkdir -p "$OUT/professional_valid"
find "$OUT/professional_valid_raw" -type f -iname '*.png' -exec cp {} "$OUT/professional_valid/" \;
echo "validation folder: $OUT/professional_valid ($(ls "$OUT/professional_valid" | wc -l) images)"
