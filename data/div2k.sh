#!/usr/bin/env bash
# DIV2K (800 training + 100 validation 2K photos, PNG; academic research use only)
# → training shards (original PNG bytes, 100 per shard) + the validation folder.
#
#   bash data/div2k.sh [OUT=data/div2k]
#   then: hdc fit experiments/lic/tiny.yaml \
#           data.train.shards='data/div2k/shards/train-{000000..000007}.tar' \
#           data.train.crops_per_image=4 data.val.folder=data/div2k/DIV2K_valid_HR
#
# Zips already in $OUT/download/ are not fetched again; a broken download resumes.
set -euo pipefail
OUT=${1:-data/div2k}
HDC=${HDC:-hdc}
BASE=${BASE:-https://data.vision.ee.ethz.ch/cvl/DIV2K}
mkdir -p "$OUT/download"
for zip in DIV2K_train_HR.zip DIV2K_valid_HR.zip; do
  if [ ! -f "$OUT/download/$zip" ]; then
    curl -fL --retry 3 -C - -o "$OUT/download/$zip.part" "$BASE/$zip"
    mv "$OUT/download/$zip.part" "$OUT/download/$zip"
  fi
  unzip -q -n "$OUT/download/$zip" -d "$OUT"
done
# 2K images: several crops per decoded image pay off (data.train.crops_per_image).
"$HDC" shards "$OUT/DIV2K_train_HR" "$OUT/shards" --prefix train --max-samples 100
echo "validation folder: $OUT/DIV2K_valid_HR (data.val.folder; 2K images are slow on CPU)"
