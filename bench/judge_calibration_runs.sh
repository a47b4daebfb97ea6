#!/usr/bin/env bash
# Re-create every labelled run of bench/labels/ (the commands of bench/labels/README.md; sample ids are
# deterministic, so they match the CSVs), judge each with the heuristic judge, and calibrate over all sets.
#
# usage: bench/judge_calibration_runs.sh WORK_DIR [--write]
#   Inputs and runs go under WORK_DIR (relative to the repository root); a finished run (WORK_DIR/NAME.done)
#   is kept, so a second call only re-judges. --write also rewrites annotators/judge/thresholds.yaml. NO_JUDGE=1 makes the
#   runs and stops.
set -euo pipefail
WORK=${1:?usage: bench/judge_calibration_runs.sh WORK_DIR [--write]}
WRITE=${2:-}
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
PY=${PYTHON:-.venv/bin/python}
CLI=${CLI:-.venv/bin/step1x-data}
mkdir -p "$WORK"
L=bench/labels

run() {  # run NAME TASK ARGS...: make WORK/NAME unless it is there (a run that failed half-way is not)
  local name=$1 task=$2; shift 2
  if [[ -f "$WORK/$name.done" ]]; then return; fi
  rm -rf "${WORK:?}/$name"
  echo "run $name" >&2
  "$CLI" run "$task" --out "$WORK/$name" --executor local "$@" >"$WORK/$name.log" 2>&1
  touch "$WORK/$name.done"
}

for set in photos text video; do
  folder="$WORK/heldout_$set"
  [[ -d "$folder" ]] || "$PY" bench/heldout_photos.py "$folder" --set "$set"
done
if [[ ! -f "$WORK/rm_src/labels.coco.json" ]]; then
  # subject_removal / subject_addition: four held-out photos and the example photos, their object labels
  # merged as they were when those sets were labelled (commit d958e30: heldout_objects.coco.json has gained
  # objects on the same photos since, which would make other pairs).
  rm -rf "$WORK/rm_src" && mkdir -p "$WORK/rm_src"
  for f in messi5.jpg smarties.png squirrel_cls.jpg stuff.jpg; do cp "$WORK/heldout_photos/$f" "$WORK/rm_src/"; done
  cp examples/photos/*.jpg examples/photos/*.png "$WORK/rm_src/"
  git show d958e30:$L/heldout_objects.coco.json >"$WORK/rm_src.heldout.json"
  git show d958e30:examples/photos/labels.coco.json >"$WORK/rm_src.examples.json"
  "$PY" - "$WORK/rm_src/labels.coco.json" "$WORK/rm_src.heldout.json" "$WORK/rm_src.examples.json" <<'PYEOF'
import json, sys
out, *parts = sys.argv[1:]
merged = {"images": [], "annotations": [], "categories": []}
image_ids, cat_ids, ann_id = {}, {}, 0
for part in parts:
    coco = json.load(open(part, encoding="utf-8"))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    local = {}
    for image in coco["images"]:
        if image["file_name"] not in image_ids:
            image_ids[image["file_name"]] = len(image_ids) + 1
            merged["images"].append({**image, "id": image_ids[image["file_name"]]})
        local[image["id"]] = image_ids[image["file_name"]]
    for ann in coco["annotations"]:
        name = names[ann["category_id"]]
        if name not in cat_ids:
            cat_ids[name] = len(cat_ids) + 1
            merged["categories"].append({"id": cat_ids[name], "name": name})
        ann_id += 1
        merged["annotations"].append({**ann, "id": ann_id, "image_id": local[ann["image_id"]], "category_id": cat_ids[name]})
json.dump(merged, open(out, "w", encoding="utf-8"))
PYEOF
fi

H=(--source "$WORK/heldout_photos")
C=(--labels $L/heldout.coco.json)
O=(--labels $L/heldout_objects.coco.json)
run text text_modification --source "$WORK/heldout_text" --param max_edits=10 --param max_attempts=40
run text_ungated text_modification --source "$WORK/heldout_text" --seed 7 --param gates=false --param max_edits=10 \
  --param max_attempts=40
run portrait portrait_beautification "${H[@]}"
run motion motion_change --source "$WORK/heldout_video"
run motion_ungated motion_change --source "$WORK/heldout_video" --param gates=false
run color color_alteration "${H[@]}" "${C[@]}" --param colours_per_object=2
run material material_modification "${H[@]}" "${C[@]}" --param materials_per_object=3
run style style_transfer "${H[@]}"
run color_ungated color_alteration "${H[@]}" "${C[@]}" --seed 7 --param min_hue_change=0 \
  --param max_target_error=1000 --param min_share=0 --param max_surround=1 --param min_seam_support=0 --param reach=0.05
run material_ungated material_modification "${H[@]}" "${C[@]}" --seed 7 --param min_outline_support=0 \
  --param max_pattern=1 --param min_compactness=0 --param min_glass_compactness=0 --param min_glass_radius=0 \
  --param min_change=0 --param max_border_cut=1
run style_ungated style_transfer "${H[@]}" --seed 7 --param per_image=1 --param inverse_pairs=false \
  --param min_agreement=0 --param min_change=0 --param min_std=0
run tone tone_transformation "${H[@]}"
run tone_ungated tone_transformation "${H[@]}" --seed 7 --param scene_check=false --param min_visible=0 \
  --param max_clipped=1 --param inverse_pairs=false
run removal subject_removal --source "$WORK/rm_src" --param check_fill=false --param max_objects=6
run addition subject_addition --source "$WORK/rm_src" --param check_fill=false --param max_objects=6
run background background_change "${H[@]}" "${O[@]}"
run background_ungated background_change "${H[@]}" "${O[@]}" --param max_holes=1.0 --param max_halo=1.0 \
  --param max_dropped=1.0 --param max_unseen_edge=1.0
# subject_replacement: the six held-out photos with an object of a replacement kind (bench/labels/README.md).
if [[ ! -d "$WORK/rp_src" ]]; then
  mkdir -p "$WORK/rp_src"
  for f in apple.jpg fruits.jpg messi5.jpg orange.jpg smarties.png stuff.jpg; do
    cp "$WORK/heldout_photos/$f" "$WORK/rp_src/"
  done
fi
run replacement subject_replacement --source "$WORK/rp_src" "${O[@]}"
run replacement_ungated subject_replacement --source "$WORK/rp_src" "${O[@]}" --param max_unseen_edge=1.0 \
  --param check_fill=false --param max_matte_halo=1.0 --param max_matte_dropped=1.0 --param max_fill_shown=1.0 \
  --param min_plausibility=1

if [[ -n "${NO_JUDGE:-}" ]]; then exit 0; fi

# name=labels pairs: every labelled set, judged afresh.
SETS=(text=text_modification text_ungated=text_modification_ungated portrait=portrait_beautification motion=motion_change
  motion_ungated=motion_change_ungated color=color_alteration color_ungated=color_alteration_ungated
  material=material_modification material_ungated=material_modification_ungated style=style_transfer
  style_ungated=style_transfer_ungated tone=tone_transformation tone_ungated=tone_transformation_ungated
  removal=subject_removal addition=subject_addition background=background_change
  background_ungated=background_change_ungated replacement=subject_replacement
  replacement_ungated=subject_replacement_ungated)
ARGS=()
for pair in "${SETS[@]}"; do
  name=${pair%%=*} labels=$L/${pair#*=}.csv
  echo "judge $name" >&2
  "$CLI" filter "$WORK/$name" --judge heuristic --thresholds none --view all --rejudge >"$WORK/$name.filter.log" 2>&1
  ARGS+=("$WORK/$name=$labels")
done
CAL=("$PY" bench/calibrate_judge.py "${ARGS[@]}")
if [[ "$WRITE" == "--write" ]]; then CAL+=(--write annotators/judge/thresholds.yaml); fi
"${CAL[@]}"
