# One entry for a fresh machine: `make demo` and `make test` each set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DDS discovery never leaves loopback; each run gets its own domain so parallel runs don't mix.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_LOCALHOST_ONLY := 1
export ROS_DOMAIN_ID ?= $(shell $(PYTHON) -c "import os; print(os.getpid() % 100 + 1)")

.PHONY: venv demo model baselines test test-fast lint format clean

$(STAMP): setup.py setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

# make demo                      closed loop in the simulator over ROS 2, the shipped int8 model
# make demo INPUT=clip.mp4       a video (or a rosbag2 folder) through the same node
INPUT ?=
demo: $(STAMP)
	$(BIN)/lane-seg demo --out runs/demo $(if $(INPUT),--input $(INPUT))

# The default model, from scratch: data -> four training stages -> fp32 + int8 ONNX -> eval ->
# bench -> models/README.md. Each stage is a file; one that exists is reused (order-only
# prerequisites), so delete runs/<stage> or data/sim to redo it. Several CPU hours on 2 cores.
REAL := ../shared/data/real/tusimple_lanenet
STAGES := unet unet_finetune unet_long unet_full
MODEL_RUN := runs/model
LS := nice -n 5 $(BIN)/lane-seg

model: models/README.md

data/sim/dataset.json: | $(STAMP)
	$(LS) collect --backend planar --out data/sim --frames 2400 --seed 0

runs/unet/best.pt: | data/sim/dataset.json
	$(LS) train --config training/configs/unet.yaml
runs/unet_finetune/best.pt: | runs/unet/best.pt
	$(LS) train --config training/configs/unet_finetune.yaml
runs/unet_long/best.pt: | runs/unet_finetune/best.pt
	$(LS) train --config training/configs/unet_long.yaml
runs/unet_full/best.pt: | runs/unet_long/best.pt
	$(LS) train --config training/configs/unet_full.yaml

models/lane_unet_int8.onnx: runs/unet_full/best.pt
	$(LS) export --model $< --out models/lane_unet_fp32.onnx --int8 $@ --calib data/sim

INT8 := models/lane_unet_int8.onnx
CARD_INPUTS := $(MODEL_RUN)/selection.json $(MODEL_RUN)/eval_int8/summary.json \
  $(MODEL_RUN)/bench/bench.json $(MODEL_RUN)/sim_int8/summary.json

$(MODEL_RUN)/selection.json: $(INT8)
	mkdir -p $(MODEL_RUN)
	$(LS) models --size 512x256 --latency --json --config training/configs/unet_full.yaml \
	  training/configs/enet.yaml training/configs/deeplabv3plus.yaml \
	  training/configs/segformer.yaml > $@.tmp
	mv $@.tmp $@

$(MODEL_RUN)/eval_int8/summary.json: $(INT8)
	for p in fp32 int8; do \
	  $(LS) eval --model models/lane_unet_$$p.onnx --data data/sim --split val \
	    --out $(MODEL_RUN)/eval_$$p --no-progress || exit 1; \
	  if [ -d $(REAL) ]; then $(LS) eval --model models/lane_unet_$$p.onnx --data $(REAL) \
	    --out $(MODEL_RUN)/eval_$${p}_real --no-progress || exit 1; fi; \
	done

# Timed with both cores on a machine otherwise idle; it also rewrites README.md's results.
$(MODEL_RUN)/bench/bench.json: $(INT8)
	$(LS) bench --model runs/unet_full/best.pt --onnx-fp32 models/lane_unet_fp32.onnx \
	  --onnx-int8 $< --data data/sim --threads 2 --node --out $(MODEL_RUN)/bench --readme README.md

$(MODEL_RUN)/sim_int8/summary.json: $(INT8)
	$(LS) sim --perception groundtruth --no-video --out $(MODEL_RUN)/sim_groundtruth
	for p in fp32 int8; do $(LS) sim --perception $$p --model models/lane_unet_$$p.onnx \
	  --engine onnxruntime-cpu --threads 1 --no-video --out $(MODEL_RUN)/sim_$$p || exit 1; done

BASELINES_JSON := runs/baselines/baselines.json
models/README.md: $(CARD_INPUTS)
	$(LS) model-card --stages $(STAGES:%=training/configs/%.yaml) --run $(MODEL_RUN) --out $@ \
	  $(if $(wildcard $(BASELINES_JSON)),--baselines $(BASELINES_JSON))

# The baseline table of training/README.md: every architecture (and the U-Net's stages) trained
# on the simulator data, evaluated now on its validation split and on the real frames; runs that
# exist are reused. Several CPU hours on 2 cores.
OTHERS := enet deeplabv3plus segformer
$(OTHERS:%=runs/%/best.pt): | data/sim/dataset.json
	$(LS) train --config training/configs/$(word 2,$(subst /, ,$@)).yaml

baselines: $(STAGES:%=runs/%/best.pt) $(OTHERS:%=runs/%/best.pt)
	$(LS) baselines --config $(STAGES:%=training/configs/%.yaml) \
	  $(OTHERS:%=training/configs/%.yaml) --data data/sim $(if $(wildcard $(REAL)),--real $(REAL)) \
	  --readme training/README.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every test, the slow ones too (about 4 minutes on 2 cores); CI runs this.
test: $(STAMP)
	$(BIN)/python -m pytest

# Without the tests marked slow, for a quick loop while editing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) runs build *.egg-info
