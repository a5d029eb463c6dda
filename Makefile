# wgns: the commands README.md gives.
#   make deps   install the Debian packages wgns needs (as root)
#   make demo   the main job: a real tunnel on this one machine
#   make test   every test: host tests, then the kernel tests in a QEMU VM
#   make bench  benchmarks against wireguard-tools and shell pipelines
SWIFT ?= swift

.PHONY: build release static deps demo test test-host test-matrix test-vm bench fuzz clean

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# One fully static executable (Swift runtime, glibc, libsodium, libmnl linked
# in); scripts/build-static.sh holds the flags and prints its path last.
static:
	bash scripts/build-static.sh

deps:
	bash scripts/deps.sh

demo: build
	bash scripts/demo.sh

test:
	bash scripts/test.sh

test-host:
	bash scripts/test.sh --host-only

test-matrix:
	bash scripts/test.sh --matrix-only

test-vm:
	bash scripts/test.sh --vm-only

bench:
	bash scripts/bench.sh

fuzz:
	WGNS_FUZZ_ITERATIONS=1000000 $(SWIFT) test -c release --filter ConfigFuzz

clean:
	rm -rf .build .build-static vm-cache build-cache dist Sources/wgns/Generated matrix-cache
