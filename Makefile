# One entry for a fresh machine: `make demo` and `make test` each set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DDS discovery never leaves loopback; each run gets its own domain so parallel runs don't mix.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_LOCALHOST_ONLY := 1
export ROS_DOMAIN_ID ?= $(shell $(PYTHON) -c "import os; print(os.getpid() % 100 + 1)")

.PHONY: venv demo model fast-model remedies tradeoff candidates baselines adapt-rungs finetune-curve test \
  test-fast lint format clean

# Editable, so `make test` and `make demo` use the checkout as it stands; tests/test_install.py
# checks a plain install (README.md, "Two commands").
$(STAMP): setup.py setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

# The ROS 2 launch system and command line (ros2 launch, run, topic; built from upstream), from
# ../shared/ros2_launch where it is beside the checkout: installed into .venv once (its stamp),
# else skipped, and tests/test_launch.py skips saying why.
ROS2_LAUNCH := ../shared/ros2_launch
LAUNCH_STAMP := $(VENV)/.ros2_launch
$(LAUNCH_STAMP): $(STAMP) $(wildcard $(ROS2_LAUNCH)/install.sh)
	@if [ -f $(ROS2_LAUNCH)/install.sh ]; then \
	  echo "installing the ROS 2 launch system into $(VENV) ($(ROS2_LAUNCH), 1-2 minutes)"; \
	  bash $(ROS2_LAUNCH)/install.sh $(VENV) && touch $@; \
	else echo "$(ROS2_LAUNCH) is absent: no ros2 launch in $(VENV), its tests skip"; fi

venv: $(STAMP) $(LAUNCH_STAMP)

# make demo                      closed loop in the simulator over ROS 2, the shipped int8 model
# make demo INPUT=clip.mp4       a video (or a rosbag2 folder) through the same node
INPUT ?=
demo: $(STAMP)
	$(BIN)/lane-seg demo --out runs/demo $(if $(INPUT),--input $(INPUT))

# The default model, from scratch: simulator data (lane-line labels, config/sim_roads.yaml) ->
# three training stages (the last adds tall bonnets, config/sim_roads_hood.yaml) -> fp32 + int8
# ONNX -> simulator eval and the real-frame scoreboard -> bench -> closed loop -> models/README.md.
# Each step is a file; one that exists is reused (order-only prerequisites), so delete
# runs/<stage> or data/roads to redo it. Several CPU hours on 2 cores. The real frames beside
# the checkout (../shared/data) are used where present.
REAL_ROOT := ../shared/data
STAGES := remedies/roads_d5_style roads_full remedies/roads_full_hood
SHIPPED := runs/remedies/roads_full_hood/best.pt
MODEL_RUN := runs/model
LS := nice -n 5 $(BIN)/lane-seg
INT8 := models/lane_unet_int8.onnx
FP32 := models/lane_unet_fp32.onnx

model: models/README.md

data/roads/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_roads.yaml --out data/roads --frames 4000 --seed 13
	touch $@

runs/remedies/roads_d5_style/best.pt: | data/roads/complete
	$(LS) train --config training/configs/remedies/roads_d5_style.yaml
runs/roads_full/best.pt: | runs/remedies/roads_d5_style/best.pt
	$(LS) train --config training/configs/roads_full.yaml

$(INT8): $(SHIPPED)
	$(LS) export --model $< --out $(FP32) --int8 $@ --calib data/roads

CARD_INPUTS := $(MODEL_RUN)/selection.json $(MODEL_RUN)/eval_int8/summary.json \
  $(MODEL_RUN)/scoreboard/scoreboard.json $(MODEL_RUN)/bench/bench.json \
  $(MODEL_RUN)/sim_int8/summary.json

$(MODEL_RUN)/selection.json: $(INT8)
	mkdir -p $(MODEL_RUN)
	$(LS) models --size 512x256 --latency --threads 2 --json \
	  --config training/configs/roads_full.yaml training/configs/remedies/roads_v2_d4.yaml \
	  training/configs/tradeoff/enet.yaml training/configs/tradeoff/deeplabv3plus.yaml \
	  training/configs/segformer.yaml > $@.tmp
	mv $@.tmp $@

$(MODEL_RUN)/eval_int8/summary.json: $(INT8)
	for p in fp32 int8; do \
	  $(LS) eval --model models/lane_unet_$$p.onnx --data data/roads --split val \
	    --out $(MODEL_RUN)/eval_$$p --no-progress || exit 1; \
	done

# Every labelled real source by its own labels, fp32 and int8 side by side.
$(MODEL_RUN)/scoreboard/scoreboard.json: $(INT8)
	$(LS) eval --model $(FP32) --model $(INT8) --real $(REAL_ROOT) --out $(MODEL_RUN)/scoreboard \
	  --readme README.md

# Timed with both cores on a machine otherwise idle; it also rewrites README.md's results.
$(MODEL_RUN)/bench/bench.json: $(INT8)
	$(LS) bench --model $(SHIPPED) --onnx-fp32 $(FP32) --onnx-int8 $< \
	  --data data/roads --threads 2 --node --out $(MODEL_RUN)/bench --readme README.md

$(MODEL_RUN)/sim_int8/summary.json: $(INT8)
	$(LS) sim --perception groundtruth --no-video --out $(MODEL_RUN)/sim_groundtruth
	for p in fp32 int8; do $(LS) sim --perception $$p --model models/lane_unet_$$p.onnx \
	  --engine onnxruntime-cpu --threads 1 --no-video --out $(MODEL_RUN)/sim_$$p || exit 1; done

# The fast model (training/README.md, "The fast model"): DeepLabV3+ with a stride-2 head on
# the road crop, distilled from the shipped int8 default, then a second stage toward that
# teacher; then its mean real F1 goes into models/shipped.json, which `model:=auto` reads.
# About 45 + 25 min of training on 2 cores.
FAST_STAGE1 := runs/fast/deeplabv3plus_refine/best.pt
FAST := runs/fast/deeplabv3plus_refine_teacher/best.pt
fast-model: models/lane_fast_int8.onnx
$(FAST_STAGE1): | data/roads/complete
	$(LS) train --config training/configs/fast/deeplabv3plus_refine.yaml
$(FAST): $(FAST_STAGE1)
	$(LS) train --config training/configs/fast/deeplabv3plus_refine_teacher.yaml
models/lane_fast_int8.onnx: $(FAST)
	$(LS) export --model $< --out runs/fast/lane_fast_fp32.onnx --int8 $@ --calib data/roads
	$(LS) eval --model $@ --real $(REAL_ROOT) --out runs/fast/scoreboard --manifest models/shipped.json

models/README.md: $(CARD_INPUTS)
	$(LS) model-card --stages $(STAGES:%=training/configs/%.yaml) --data data/roads \
	  --run $(MODEL_RUN) --out $@ \
	  $(foreach t,remedies tradeoff candidates,$(if $(wildcard runs/$(t)/baselines.json),--$(t) runs/$(t)/baselines.json))

# What closed the gap to real roads, one remedy at a time (training/README.md, "remedies"), and
# the architecture trade-off at the latency budget ("tradeoff"): every run on the same schedule,
# scored on the simulator and on every labelled real source. Runs that exist are reused.
# Several CPU hours on 2 cores.
data/sim_paint/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_variants/paint.yaml --out data/sim_paint --frames 3000 --seed 11
	touch $@
data/sim_lines/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_variants/lines.yaml --out data/sim_lines --frames 3000 --seed 11
	touch $@
data/sim_v2/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_variants/roads_v2.yaml --out data/sim_v2 --frames 4000 --seed 12
	touch $@
data/real_culane23/complete: | $(STAMP)
	$(LS) import --format real --source culane_driver23 $(REAL_ROOT) --out data/real_culane23
	touch $@

# Self-training: the second stage's own lines on unlabelled MIT / Apache-2.0 real frames.
data/pseudo_real/complete: | runs/roads_full/best.pt
	$(LS) pseudo-label --model runs/roads_full/best.pt --out data/pseudo_real \
	  --frames '$(REAL_ROOT)/real/udacity/**/*.jpg' --frames '$(REAL_ROOT)/real/udacity/*.mp4' \
	  --frames '$(REAL_ROOT)/real/tusimple_lanenet/test_image/*.jpg'
	touch $@

# Tall bonnets of wide dashcams, lane lines run on over them (config/sim_roads_hood.yaml).
data/roads_hood/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_roads_hood.yaml --out data/roads_hood \
	  --frames 2000 --seed 17 --val-fraction 0
	touch $@
# The same with the finish of CULane's bonnet: dark, glossy, mirroring trees and sky.
data/roads_gloss/complete: | $(STAMP)
	$(LS) collect --backend planar --config config/sim_roads_gloss.yaml --out data/roads_gloss \
	  --frames 2000 --seed 19 --val-fraction 0
	touch $@

REMEDIES := paint lines roads_v2_d4 roads_v2_d5 roads_d5 roads_d5_style roads_d5_culane_nc \
  roads_full_pseudo roads_full_hood roads_full_gloss
# The rungs that continue the default model's second stage.
$(patsubst %,runs/remedies/roads_full_%/best.pt,pseudo hood gloss): | runs/roads_full/best.pt
# The datasets a training config reads (its data.sources roots), as make targets: `complete`
# is written once a collect or import has finished (they resume, so a killed one is redone).
DATA_OF = $(patsubst %,data/%/complete,$(shell sed -n 's/^ *- {root: data\/\([^,]*\),.*/\1/p' training/configs/$(1)))
.SECONDEXPANSION:
runs/remedies/%/best.pt runs/tradeoff/%/best.pt: | $$(call DATA_OF,$$(word 2,$$(subst /, ,$$@))/$$*.yaml)
	$(LS) train --config training/configs/$(word 2,$(subst /, ,$@))/$*.yaml

remedies: $(REMEDIES:%=runs/remedies/%/best.pt)
	$(LS) baselines --config $(REMEDIES:%=training/configs/remedies/%.yaml) --data data/roads \
	  --real $(REAL_ROOT) --out runs/remedies --section remedies --readme training/README.md

TRADEOFF := remedies/roads_v2_d4 remedies/roads_v2_d5 tradeoff/enet tradeoff/deeplabv3plus
tradeoff: $(TRADEOFF:%=runs/%/best.pt)
	$(LS) baselines --config $(TRADEOFF:%=training/configs/%.yaml) --data data/sim_v2 \
	  --real $(REAL_ROOT) --latency 2 --out runs/tradeoff --section tradeoff \
	  --readme training/README.md

# The U-Net against the two faster architectures of the trade-off, each through the shipped
# model's first two stages (training/README.md, "candidates"). Several CPU hours on 2 cores.
CANDIDATES := enet deeplabv3plus
.PRECIOUS: runs/candidates/%_style/best.pt
runs/candidates/%_style/best.pt: | data/roads/complete
	$(LS) train --config training/configs/candidates/$*_style.yaml
runs/candidates/%_full/best.pt: | runs/candidates/%_style/best.pt
	$(LS) train --config training/configs/candidates/$*_full.yaml

candidates: runs/roads_full/best.pt $(CANDIDATES:%=runs/candidates/%_full/best.pt)
	$(LS) baselines --config training/configs/roads_full.yaml \
	  $(CANDIDATES:%=training/configs/candidates/%_full.yaml) --data data/roads \
	  --real $(REAL_ROOT) --latency 2 --out runs/candidates --section candidates \
	  --readme training/README.md

# Your camera (README.md): `lane-seg adapt`'s rung table (each label-free rung on each labelled
# real source: adapted on its train clips' images, scored on its test clips) and `lane-seg
# finetune`'s learning curve (N labelled culane_driver23 frames; scored on its test clips and on
# culane_night), from the shipped model as the commands start from it without --model (its
# weights recovered from models/lane_unet_int8.onnx): runs/adapt_rungs/rungs.md, written into
# training/README.md and models/README.md, and runs/finetune_curve/curve.md. Hours on 2 cores;
# the curve's weights are never shipped.
adapt-rungs: | data/roads/complete
	nice -n 5 $(BIN)/python studies/adapt_rungs.py --data $(REAL_ROOT) --sim data/roads \
	  --max-frames 200 --selftrain-steps 60 --distill-steps 50 --out runs/adapt_rungs \
	  --video $(REAL_ROOT)/real/udacity/solidWhiteRight.mp4 \
	  --readme training/README.md --readme models/README.md
finetune-curve: | data/roads/complete
	nice -n 5 $(BIN)/python studies/finetune_curve.py --data $(REAL_ROOT) --sim data/roads \
	  --out runs/finetune_curve --readme training/README.md --readme models/README.md

# The baseline table of training/README.md: every architecture (and the first U-Net's stages)
# trained on the original simulator data (paint labels), evaluated on its validation split and
# on every labelled real source; runs that exist are reused. Several CPU hours on 2 cores.
data/sim/complete: | $(STAMP)
	$(LS) collect --backend planar --out data/sim --frames 2400 --seed 0
	touch $@

BASE_STAGES := unet unet_finetune unet_long unet_full
runs/unet/best.pt: | data/sim/complete
	$(LS) train --config training/configs/unet.yaml
runs/unet_finetune/best.pt: | runs/unet/best.pt
	$(LS) train --config training/configs/unet_finetune.yaml
runs/unet_long/best.pt: | runs/unet_finetune/best.pt
	$(LS) train --config training/configs/unet_long.yaml
runs/unet_full/best.pt: | runs/unet_long/best.pt
	$(LS) train --config training/configs/unet_full.yaml
OTHERS := enet deeplabv3plus segformer
$(OTHERS:%=runs/%/best.pt): | data/sim/complete
	$(LS) train --config training/configs/$(word 2,$(subst /, ,$@)).yaml

baselines: $(BASE_STAGES:%=runs/%/best.pt) $(OTHERS:%=runs/%/best.pt)
	$(LS) baselines --config $(BASE_STAGES:%=training/configs/%.yaml) \
	  $(OTHERS:%=training/configs/%.yaml) --data data/sim \
	  $(if $(wildcard $(REAL_ROOT)),--real $(REAL_ROOT)) --readme training/README.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every test, the slow ones too (about 4 minutes on 2 cores); CI runs this.
test: $(STAMP) $(LAUNCH_STAMP)
	$(BIN)/python -m pytest

# Without the tests marked slow, for a quick loop while editing.
test-fast: $(STAMP) $(LAUNCH_STAMP)
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) runs build *.egg-info
