#!/usr/bin/env bash
# 36 photographs from four Debian desktop-wallpaper packages (bookworm; CC-BY, CC-BY-SA, CC0,
# GPL-2+: every file's author and licence is written to $OUT/SOURCES.txt from the packages'
# own copyright files) → one training shard, downscaled to 512 on the short side like the
# `small` recipe's photographs.
#
#   bash data/debian-photos.sh [OUT=data/debian-photos]
#   then: data.train.shards=...::data/debian-photos/train-000000.tar
#
# The packages are pinned by version and sha256; downloads already in $OUT/download are kept.
# Needs curl, ar (binutils) and tar with xz.
set -euo pipefail
OUT=${1:-data/debian-photos}
HDC=${HDC:-hdc}
BASE=${BASE:-https://deb.debian.org/debian}
PKGS=(
  "pool/main/l/lomiri-wallpapers/lomiri-wallpapers-16.04_20.04.0-2_all.deb a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab"
  "pool/main/l/lomiri-wallpapers/lomiri-wallpapers-20.04_20.04.0-2_all.deb d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709"
  "pool/main/m/mate-backgrounds/mate-backgrounds_1.26.0-1_all.deb 7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04"
  "pool/main/p/plasma-workspace-wallpapers/plasma-workspace-wallpapers_5.27.5-2_all.deb 32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b"
)
# the photographs among the packages' wallpapers (the rest are drawings and renders)
L=usr/share/backgrounds
M=usr/share/backgrounds/mate/nature
P=usr/share/wallpapers
PHOTOS=(
  $L/Bridge_by_Sander_Klootwijk.jpg $L/Dragonfly_by_Bolly.jpg $L/Picture_0B_by_freespace.jpg
  $L/Picture_1A_by_freespace.jpg $L/Wine_by_Jakkub_Mede.jpg $L/aitzgorri_by_Aitzol_Berasategi.jpg
  $L/free_by_Peter_Nerlich.jpg $L/friends_by_Aitzol_Berasategi.jpg $L/greentock_by_Peter_Nerlich.jpg
  $L/life_by_Aitzol_Berasategi.jpg $L/picosdeeuropa_by_Aitzol_Berasategi.jpg
  $L/seeding_by_Clements_Engelhardt.jpg $L/sunset_by_Aitzol_Berasategi.jpg $L/Kleiber_by_Lukas_Baubkus.jpg
  $M/Aqua.jpg $M/Blinds.jpg $M/Dune.jpg $M/Garden.jpg $M/GreenMeadow.jpg $M/LadyBird.jpg
  $M/RainDrops.jpg $M/Storm.jpg $M/TwoWings.jpg $M/Wood.jpg $M/YellowFlower.jpg
)
for w in BytheWater ColdRipple DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am; do
  PHOTOS+=("$P/$w/contents/images/2560x1600.jpg")
done
PHOTOS+=("$P/ColorfulCups/contents/images/2560x1600.jpg")

# photos/, extract/ and SOURCES.txt are rewritten on every run: never those of another tool
for own in photos extract SOURCES.txt; do
  if [ -e "$OUT/$own" ] && [ ! -e "$OUT/.debian-photos" ]; then
    echo "$OUT/$own: already exists and was not written by this script; choose another folder" >&2; exit 2
  fi
done
mkdir -p "$OUT" && touch "$OUT/.debian-photos"
rm -rf "$OUT/photos" "$OUT/extract"
mkdir -p "$OUT/download" "$OUT/extract" "$OUT/photos"
: > "$OUT/SOURCES.txt"
for entry in "${PKGS[@]}"; do
  path=${entry% *}; sum=${entry#* }; deb="$OUT/download/$(basename "$path")"
  if [ ! -f "$deb" ]; then
    curl -fsSL --retry 3 -o "$deb.part" "$BASE/$path"
    mv "$deb.part" "$deb"
  fi
  echo "$sum  $deb" | sha256sum -c --status || { echo "$deb: sha256 differs from the pinned one; delete it and rerun" >&2; exit 2; }
  pkg=$(basename "$path"); pkg=${pkg%%_*}
  mkdir -p "$OUT/extract/$pkg"
  ar p "$deb" data.tar.xz | tar -xJ -C "$OUT/extract/$pkg"
  echo "== $pkg ($BASE/$path, sha256 $sum)" >> "$OUT/SOURCES.txt"
  cat "$OUT/extract/$pkg/usr/share/doc/$pkg/copyright" >> "$OUT/SOURCES.txt"
done
n=0
for rel in "${PHOTOS[@]}"; do
  src=$(printf '%s\n' "$OUT"/extract/*/"$rel" | head -n 1)
  [ -f "$src" ] || { echo "$rel: not in the pinned packages" >&2; exit 2; }
  case $rel in $P/*) name=$(echo "$rel" | cut -d/ -f4).jpg ;; *) name=$(basename "$rel") ;; esac
  [ ! -e "$OUT/photos/$name" ] || { echo "$name: two photographs with one name" >&2; exit 2; }
  cp "$src" "$OUT/photos/$name"; n=$((n + 1))
done
echo "$n photographs in $OUT/photos (authors and licences: $OUT/SOURCES.txt)"
"$HDC" shards "$OUT/photos" "$OUT" --resize 512
rm -rf "$OUT/extract"
