# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both set up .venv themselves; `make install` is that set-up alone and is idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install data demo test lint format bench bench-pll clean

install: $(STAMP)

# Re-installs only when a requirements file changed; a second `make install` does nothing.
# CPU-only Linux: `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs the
# pinned torch from that index first (PyPI's Linux torch is the multi-GB CUDA build); pip then
# keeps it. Without TORCH_INDEX everything comes from the package index as configured. Last, the
# project itself in editable mode (pyproject.toml), so `python -m recipes.<name>` and `accelerate
# launch -m recipes.<name>` run from any folder; it is built with requirements-dev.txt's setuptools.
TORCH_INDEX ?=
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed \
	(transformers 5, numpy 2.4, pyarrow 26, matplotlib 3.11): make install PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PIN) --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

data: install
	$(PY) -m recipes.tasks.shakespeare

# The main job: a byte-level BPE tokenizer, then a ModernBERT masked LM (recipes/pretrain_mlm.py).
demo: data
	$(PY) -m tokenizer_training.train_tokenizer --config tokenizer_training/configs/bytelevel-bpe.yaml
	$(PY) -m recipes.pretrain_mlm --config recipes/configs/modernbert-tiny.yaml --overwrite_output_dir true
	@echo "Fill-mask on held-out lines (All's Well That Ends Well is in the validation split):"
	$(PY) -m recipes.fill_mask --model outputs/modernbert-tiny $(DEMO_PROMPTS)

# The seed tutorial's model: RoBERTa, same tokenizer, same data, same recipe.
.PHONY: demo-roberta
demo-roberta: data
	$(PY) -m tokenizer_training.train_tokenizer --config tokenizer_training/configs/bytelevel-bpe.yaml
	$(PY) -m recipes.pretrain_mlm --config recipes/configs/roberta-tiny.yaml --overwrite_output_dir true
	@echo "Fill-mask on held-out lines (All's Well That Ends Well is in the validation split):"
	$(PY) -m recipes.fill_mask --model outputs/roberta-tiny $(DEMO_PROMPTS)

DEMO_PROMPTS := "What is it, my good <mask>, the king languishes of?" \
	"I do beg your good <mask> in this case." \
	"What is your <mask>, madam?"

# BERT: WordPiece tokenizer, then masked LM + next-sentence prediction (recipes/pretrain_bert.py).
.PHONY: demo-bert
demo-bert: data
	$(PY) -m tokenizer_training.train_tokenizer --config tokenizer_training/configs/wordpiece.yaml
	$(PY) -m recipes.pretrain_bert --config recipes/configs/bert-tiny-nsp.yaml --overwrite_output_dir true
	@echo "Fill-mask on held-out lines (All's Well and Antony and Cleopatra are the validation plays):"
	$(PY) -m recipes.fill_mask --model outputs/bert-tiny-nsp \
		"What is it, my good [MASK], the king languishes of?" \
		"The nature of bad [MASK] infects the teller." \
		"What is your [MASK], madam?"

# Does pretraining pay off? Fine-tune FINETUNE_MODEL on the First Folio's kinds of play (comedy,
# history, tragedy; test passages from the text pretraining held out) on 64 and 256 labels, 3 seeds
# each, next to the same model from random weights and the majority class; prints the table and
# writes learning_curve.png (recipes/finetune_classification.py, recipes/tasks/folio.py).
FINETUNE_MODEL ?= outputs/modernbert-tiny
.PHONY: demo-finetune
demo-finetune: data
	test -f $(FINETUNE_MODEL)/all_results.json || $(MAKE) demo
	@test -f $(FINETUNE_MODEL)/all_results.json || { echo "$(FINETUNE_MODEL) has no finished \
	pretraining run: train it first (make demo-roberta for outputs/roberta-tiny)"; exit 2; }
	$(PY) -m recipes.tasks.folio
	$(PY) -m recipes.finetune_classification --config recipes/configs/finetune/folio-genre.yaml \
		--model_name_or_path $(FINETUNE_MODEL) --output_dir $(FINETUNE_MODEL)-folio-genre \
		--overwrite_output_dir true

# Does pretraining pay off on a corpus and task nothing here was tuned on? Debian's German man
# pages (apt-get download needs the Debian archive; groff renders them): the task files, a
# tokenizer and 8x the demo's pretraining tokens on the pages (4000 steps x 16 x 128; ~25 minutes
# on a 2-core CPU), then 256 labels, 3 seeds, vs random init (recipes/configs/finetune/manpages-de.yaml).
DE_DATA := data/manpages-de
.PHONY: demo-payoff
demo-payoff: install
	test -f $(DE_DATA)/corpus.txt || ls data/debs/manpages-de*.deb >/dev/null 2>&1 || \
		{ mkdir -p data/debs && cd data/debs && apt-get download manpages-de manpages-de-dev; } || \
		{ echo "apt-get download failed: put manpages-de*.deb and manpages-de-dev*.deb (any \
		Debian mirror, pool/main/m/manpages-de/) in data/debs and rerun"; exit 2; }
	test -f $(DE_DATA)/corpus.txt || $(PY) -m recipes.tasks.manpages_de --debs data/debs --out_dir $(DE_DATA)
	$(PY) -m tokenizer_training.train_tokenizer --config tokenizer_training/configs/bytelevel-bpe.yaml \
		--train_files $(DE_DATA)/corpus.txt --output_dir outputs/tokenizer-de
	$(PY) -m recipes.pretrain_mlm --config recipes/configs/modernbert-tiny.yaml \
		--train_files $(DE_DATA)/corpus.txt --tokenizer_name_or_path outputs/tokenizer-de \
		--output_dir outputs/modernbert-de --max_steps 4000 --per_device_train_batch_size 16 \
		--overwrite_output_dir true
	$(PY) -m recipes.finetune_classification --config recipes/configs/finetune/manpages-de.yaml \
		--model_name_or_path outputs/modernbert-de --overwrite_output_dir true

test: install
	$(PY) -m pytest -q

# The quick lane: everything but the tests that train in real processes (docs/measurements.md).
.PHONY: test-fast
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: data
	$(PY) -m benchmarks.bench

bench-pll: install
	$(PY) -m benchmarks.pll

clean:
	rm -rf outputs .pytest_cache
