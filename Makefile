# bitnet.c build. `make` builds build/libbitnet.a and build/bitnet; `make test` runs every test.
# Options: SAN=1 (AddressSanitizer + UBSan, into build-san/), CC=..., OPT=...
# `make fuzz` builds the libFuzzer harnesses tests/fuzz/fuzz_*.c with clang (ASan + UBSan) into
# build-fuzz/fuzz/; `make fuzz-run FUZZ_SECONDS=N` runs each for N seconds (scripts/fuzz.sh).
# CUDA=1 also builds src/backend/cuda/*.cu with nvcc (into build-cuda/, linking cudart, cuBLAS
# and NCCL; NCCL=0 builds without data-parallel training);
# `make CUDA=1 test-cuda` runs the GPU tests and benches (needs a GPU). NVCC=... picks nvcc.
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

ifeq ($(CUDA),1)
BUILD   ?= build-cuda
endif
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
# `bitnet serve` (tools/cmd_serve.c, tools/serve_*.c) is built only when pkg-config finds
# libmicrohttpd; the library never links it. The chat page is compiled in from serve_page.html.
HTTP_OK := $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1)
SERVE_SRC := tools/cmd_serve.c $(wildcard tools/serve_*.c)
ifeq ($(HTTP_OK),1)
CLI_SRC := $(wildcard tools/*.c) $(BUILD)/tools/serve_page.c
HTTP_CFLAGS := $(shell pkg-config --cflags libmicrohttpd)
HTTP_LIBS := $(shell pkg-config --libs libmicrohttpd)
else
CLI_SRC := $(filter-out $(SERVE_SRC),$(wildcard tools/*.c))
endif
TOOLS   := $(BUILD)/bitnet

# ISA-specific kernel files get their own flags; they guard themselves by architecture.
ifneq (,$(findstring x86_64,$(ARCH)))
$(BUILD)/$(KDIR)/x86_avx2.o:   CFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/$(KDIR)/x86_avx512.o: CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
$(BUILD)/$(KDIR)/x86_avxvnni.o: CFLAGS += -mavx2 -mfma -mf16c -mavxvnni
$(BUILD)/$(KDIR)/x86_avxvnni_vl.o: CFLAGS += -mavx2 -mfma -mf16c -mavx512f -mavx512vl -mavx512vnni
endif
ifneq (,$(findstring aarch64,$(ARCH)))
$(BUILD)/$(KDIR)/arm_neon.o:    CFLAGS += -march=armv8-a
$(BUILD)/$(KDIR)/arm_dotprod.o: CFLAGS += -march=armv8.2-a+dotprod
endif

.DEFAULT_GOAL := all
# CUDA=1: the .cu files join the library (they are never picked up otherwise).
ifeq ($(CUDA),1)
NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CU_ARCH   ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a
NVFLAGS   ?= -O3 -std=c++17 $(CU_ARCH) -Xcompiler -fPIC,-fvisibility=hidden -Drestrict=__restrict__ -Iinclude -Isrc
CU_SRC  := $(wildcard src/backend/cuda/*.cu)
# Data-parallel training over NCCL (src/backend/cuda/dist_nccl.cu); NCCL=0 leaves it out,
# NCCL_CFLAGS / NCCL_LIBS say where nccl.h is and how to link it (e.g. -I/path/include and
# -L/path/lib -l:libnccl.so.2 where only a Python wheel's copy exists). The default is on when
# nccl.h is in CUDA_HOME/include or /usr/include (or NCCL_CFLAGS is given), else off.
NCCL      ?= $(if $(NCCL_CFLAGS)$(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h),1,0)
ifeq ($(CUDA)$(NCCL),10)
$(info CUDA build without NCCL (NCCL=0, or no nccl.h found): bitnet train --nproc / RANK will refuse to run)
endif
ifeq ($(NCCL),1)
NCCL_LIBS ?= -lnccl
NVFLAGS   += $(NCCL_CFLAGS)
CFLAGS    += -DBN_NCCL=1
LDLIBS    += $(NCCL_LIBS)
else
CU_SRC  := $(filter-out src/backend/cuda/dist_nccl.cu,$(CU_SRC))
endif
CU_OBJ  := $(CU_SRC:%.cu=$(BUILD)/%.o)
OBJ     += $(CU_OBJ)
CFLAGS  += -DBN_CUDA=1
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lstdc++
$(BUILD)/src/backend/cuda/%.o: src/backend/cuda/%.cu $(HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@
CUDA_TESTS := $(patsubst tests/cuda/%.c,$(BUILD)/tests/cuda/%,$(wildcard tests/cuda/*.c))
all: $(CUDA_TESTS) $(BUILD)/tests/cuda/bench_barrier
$(BUILD)/tests/cuda/bench_barrier: tests/cuda/bench_barrier.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 $(CU_ARCH) $< -o $@
$(BUILD)/tests/cuda/%: tests/cuda/%.c tests/t.h $(BUILD)/libbitnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(INTERNAL) -I$(CUDA_HOME)/include -Wno-format-zero-length -Itests $< -o $@ $(BUILD)/libbitnet.a $(LDFLAGS) $(LDLIBS)
# GPU checks against the CPU reference, then the benches (on a machine with a GPU).
test-cuda: all
	$(BUILD)/tests/cuda/test_cuda
	$(BUILD)/tests/cuda/test_cuda_model
	$(BUILD)/tests/cuda/bench_cuda
	$(BUILD)/tests/cuda/test_cuda_model --bench
	$(BUILD)/tests/cuda/test_cuda_train
	$(BUILD)/tests/cuda/test_cuda_attn
	$(BUILD)/tests/cuda/bench_cuda_train 125m 1b
else
test-cuda:
	@echo "test-cuda needs the CUDA build: make CUDA=1 test-cuda" >&2; exit 2
endif
.PHONY: test-cuda

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
	$(CC) $(CFLAGS) $(HTTP_CFLAGS) -Itools $(CLI_SRC) -o $@ $(BUILD)/libbitnet.a $(LDFLAGS) $(LDLIBS) $(HTTP_LIBS)

# The chat page as a byte array (od, not a string literal: no escaping, no trigraphs).
$(BUILD)/tools/serve_page.c: tools/serve_page.html
	@mkdir -p $(dir $@)
	{ echo '/* generated from tools/serve_page.html by the Makefile: do not edit */'; echo '#include <stddef.h>'; \
	  echo 'const unsigned char serve_page[] = {'; od -An -v -tx1 $< | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0};'; echo 'const size_t serve_page_len = sizeof serve_page - 1;'; } > $@

$(BUILD)/tests/%: tests/%.c tests/t.h tests/t_train.h tests/t_tmp.h $(BUILD)/libbitnet.a
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
	rm -rf build build-san build-fuzz build-cuda

# `make install PREFIX=DIR` (DESTDIR for staging): the public headers, libbitnet.a and libbitnet.so
# (only bitnet_ symbols exported), LIBDIR/pkgconfig/bitnet.pc and the CMake package config
# LIBDIR/cmake/bitnet/ (find_package(bitnet): bitnet::bitnet, bitnet::bitnet_static), and the
# bitnet CLI in BINDIR. Templates in dist/. `make uninstall PREFIX=DIR` removes those files.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
VERSION := $(shell sed -n 's/^\#define BITNET_VERSION "\(.*\)"/\1/p' include/bitnet.h)
PRIVATE_LIBS := $(strip $(PKG_LIBS) -lm -lpthread)
INST_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g' -e 's|@PRIVATE_LIBS@|$(PRIVATE_LIBS)|g' \
	-e 's|@CMAKE_PRIVATE_LIBS@|$(subst $(space),;,$(PRIVATE_LIBS))|g' \
	-e "s|@INC_FROM_LIB@|$$(realpath -m --relative-to='$(LIBDIR)' '$(INCDIR)')|g"
space := $(subst ,, )
install: $(BUILD)/libbitnet.a $(BUILD)/libbitnet.so $(TOOLS)
	install -d '$(DESTDIR)$(INCDIR)' '$(DESTDIR)$(LIBDIR)/pkgconfig' '$(DESTDIR)$(LIBDIR)/cmake/bitnet' '$(DESTDIR)$(BINDIR)'
	install -m 644 include/bitnet.h include/bitnet_train.h '$(DESTDIR)$(INCDIR)/'
	install -m 644 $(BUILD)/libbitnet.a '$(DESTDIR)$(LIBDIR)/'
	install -m 755 $(BUILD)/libbitnet.so '$(DESTDIR)$(LIBDIR)/'
	install -m 755 $(TOOLS) '$(DESTDIR)$(BINDIR)/'
	$(INST_SUBST) dist/bitnet.pc.in > '$(DESTDIR)$(LIBDIR)/pkgconfig/bitnet.pc'
	$(INST_SUBST) dist/bitnetConfig.cmake.in > '$(DESTDIR)$(LIBDIR)/cmake/bitnet/bitnetConfig.cmake'
	$(INST_SUBST) dist/bitnetConfigVersion.cmake.in > '$(DESTDIR)$(LIBDIR)/cmake/bitnet/bitnetConfigVersion.cmake'
uninstall:
	rm -f '$(DESTDIR)$(INCDIR)/bitnet.h' '$(DESTDIR)$(INCDIR)/bitnet_train.h' '$(DESTDIR)$(LIBDIR)/libbitnet.a' \
	  '$(DESTDIR)$(LIBDIR)/libbitnet.so' '$(DESTDIR)$(BINDIR)/bitnet' '$(DESTDIR)$(LIBDIR)/pkgconfig/bitnet.pc' \
	  '$(DESTDIR)$(LIBDIR)/cmake/bitnet/bitnetConfig.cmake' '$(DESTDIR)$(LIBDIR)/cmake/bitnet/bitnetConfigVersion.cmake'
	-rmdir '$(DESTDIR)$(LIBDIR)/cmake/bitnet' 2>/dev/null
.PHONY: install uninstall

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
