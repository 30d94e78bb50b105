# The two commands a newcomer needs:  make app   (serve the app on the bundled model)   and   make test.
.PHONY: setup app test lint bench
setup:
	@scripts/setup.sh

app: setup
	.venv/bin/python app.py

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python -m bench.run
