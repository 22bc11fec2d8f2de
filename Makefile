# The two commands of the README. Both start from a fresh clone.
.PHONY: up test setup

# Set up, then run the example shop app in the foreground (Ctrl-C stops it).
up:
	scripts/setup
	cd examples/shop && PATH="$(CURDIR)/.venv/bin:$$PATH" lsq up

# Set up with the test tools, then run the whole test suite.
test:
	scripts/setup --test
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/pytest -q
