# onemap: `make demo` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := .onemap/stamps
SIZE ?= S
SEED ?= 7
LIVE_RATE ?= 20

.PHONY: demo test db mqtt data lint schema system venv bench serve clean-db

demo: data mqtt ## set-up, local PostGIS and broker, demo city, its devices live, dashboard at http://127.0.0.1:8050
	$(BIN)/onemap serve --live $(LIVE_RATE)

test: db mqtt ## set-up and the whole suite
	$(BIN)/pytest

db: venv system ## environment and local PostGIS up (or DATABASE_URL migrated)
	$(BIN)/onemap db up

mqtt: venv system ## the local MQTT broker up (or ONEMAP_MQTT_URL checked)
	$(BIN)/onemap mqtt up

data: db ## demo city generated and loaded
	$(BIN)/onemap demo --size $(SIZE) --seed $(SEED)

lint: venv ## ruff, and the import contract of pyproject.toml (the package layering)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

schema: db ## schema.sql again, from a database the migrations make
	$(BIN)/python -m onemap.migrate

bench: data
	$(BIN)/python -m bench

system: $(STAMP)/system
$(STAMP)/system: scripts/system-deps.sh
	./scripts/system-deps.sh
	@mkdir -p $(STAMP) && touch $@

venv: $(STAMP)/venv
$(STAMP)/venv: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@mkdir -p $(STAMP) && touch $@

clean-db: ## stop and delete the local cluster
	-$(BIN)/onemap db down
	rm -rf .onemap/pg
