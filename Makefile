# bitnet.c build. `make` builds build/libbitnet.a and build/bitnet; `make test` runs every test.
# Options: SAN=1 (AddressSanitizer + UBSan, into build-san/), CC=..., OPT=...
# `make fuzz` builds the libFuzzer harnesses tests/fuzz/fuzz_*.c with clang (ASan + UBSan) into
# build-fuzz/fuzz/; `make fuzz-run FUZZ_SECONDS=N` runs each for N seconds (scripts/fuzz.sh).
# Every src/**.c goes into the library; every tests/test_*.c becomes a test
# binary; tests/*.sh are shell tests that drive the CLI. Add files, not rules.

CC      ?= cc
KDIR    := src/backend/cpu/kernels
OPT     ?= -O2
ARCH    := $(shell $(CC) -dumpmachine)
PKGS    := libcjson libpcre2-8
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson -lpcre2-8)
CFLAGS  += -std=c11 $(OPT) -fopenmp-simd -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS)
# The library, tests and fuzzers see src/; the tools see include/ (and tools/) only.
INTERNAL := -Isrc
LDLIBS  += $(PKG_LIBS) -lm -lpthread

FUZZ_CC ?= clang
ifeq ($(FUZZ),1)
BUILD   ?= build-fuzz
CC      := $(FUZZ_CC)
OPT     := -O1
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SAN),1)
BUILD   ?= build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   ?= build
endif

SRC     := $(shell find src -name "*.c" | LC_ALL=C sort)
HDRS    := $(shell find src include -name "*.h")
ifeq ($(FUZZ),1) # the harnesses use no ISA kernels (and clang rejects some GCC-only kernel code)
SRC     := $(filter-out $(KDIR)/x86_% $(KDIR)/arm_%,$(SRC))
endif
OBJ     := $(SRC:%.c=$(BUILD)/%.o)
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
CLI_SRC := $(wildcard tools/*.c)
TOOLS   := $(BUILD)/bitnet

# ISA-specific kernel files get their own flags; they guard themselves by architecture.
ifneq (,$(findstring x86_64,$(ARCH)))
$(BUILD)/$(KDIR)/x86_avx2.o:   CFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/$(KDIR)/x86_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
endif
ifneq (,$(findstring aarch64,$(ARCH)))
$(BUILD)/$(KDIR)/arm_neon.o:    CFLAGS += -march=armv8-a
$(BUILD)/$(KDIR)/arm_dotprod.o: CFLAGS += -march=armv8.2-a+dotprod
endif

FUZZ_SECONDS ?= 30
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all test clean run default-model bench fuzz fuzz-bins fuzz-run
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
all: $(BUILD)/libbitnet.a $(BUILD)/libbitnet.so $(TOOLS) $(TESTS) $(EXAMPLES)

$(BUILD)/src/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INTERNAL) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/libbitnet.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library exports the public bitnet_ API alone (bitnet.h pushes default visibility;
# every object is built with -fvisibility=hidden; src/bitnet.map is the export list).
$(BUILD)/libbitnet.so: $(OBJ) src/bitnet.map
	$(CC) -shared -Wl,--version-script=src/bitnet.map -o $@ $(OBJ) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bitnet: $(CLI_SRC) $(wildcard tools/*.h include/*.h) $(BUILD)/libbitnet.a
	$(CC) $(CFLAGS) -Itools $(CLI_SRC) -o $@ $(BUILD)/libbitnet.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/t.h $(BUILD)/libbitnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INTERNAL) -Wno-format-zero-length -Itests $< -o $@ $(BUILD)/libbitnet.a $(LDFLAGS) $(LDLIBS)

# Examples are apps: public headers only (no -Isrc), linked against the shared library.
$(BUILD)/examples/%: examples/%.c $(wildcard include/*.h) $(BUILD)/libbitnet.so
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -Wall -Wextra -Iinclude $< -o $@ -L$(BUILD) -lbitnet -Wl,-rpath,$(abspath $(BUILD)) $(LDFLAGS)

test: all
	BUILD=$(BUILD) bash tests/run.sh

# libFuzzer harnesses (tests/fuzz/fuzz_*.c; not test_*.c, so `make test` leaves them out).
fuzz:
	$(MAKE) FUZZ=1 fuzz-bins
fuzz-bins: $(FUZZERS)
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(BUILD)/libbitnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INTERNAL) -fsanitize=fuzzer -Itests/fuzz $< -o $@ $(BUILD)/libbitnet.a $(LDFLAGS) $(LDLIBS)
fuzz-run: fuzz
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-san build-fuzz

# The README's first command: install deps, build, tell a story with the bundled model.
DEFAULT_MODEL ?= models/bitnet-tinystories
PROMPT ?= Once upon a time
run:
	bash scripts/setup.sh
	$(MAKE) all
	$(BUILD)/bitnet run -m $(DEFAULT_MODEL) -p "$(PROMPT)" -n 200 --temp 0.7 --seed 1 -t 2

# Prefill and decode speed of the bundled model (a few seconds): pp512 and tg128 at 1 and 2 threads.
bench: all
	$(BUILD)/bitnet bench -m $(DEFAULT_MODEL) -t 1,2

# Retrain the bundled model from ../shared/data (see models/bitnet-tinystories/README.md).
default-model: all
	bash scripts/default-model.sh
