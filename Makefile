# strata: build, test, run, bench.
#
#   make            library (build/libstrata.a) and CLI (build/strata)
#   make run        demo: generate data/example.db if absent, run the pipeline into ./warehouse
#   make test       Criterion suite + Python reader tests
#   make mpi        build/strata-mpi: the same CLI on Open MPI (mpicc; mpirun -np N build/strata-mpi run)
#   make asan       the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       every fuzz target for FUZZ_SECONDS (clang libFuzzer)
#   make bench      release build, benchmark against SQLite / DuckDB / scikit-learn / zstd
#   make install PREFIX=/usr/local
#   make clean
#
# Missing Debian packages are installed once when run as root (scripts/deps.sh),
# otherwise make stops and prints the exact apt-get command.

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
PKGS     := sqlite3 libzstd
OPT      ?= -O2
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
CPPFLAGS += -Iinclude -Iengine -Iformats -Ipipeline -Ipipeline/quality -Ipipeline/report -Iml
CFLAGS   ?= $(OPT) -g
SAN      ?=
ALL_CFLAGS = $(CSTD) $(WARN) -pthread -MMD -MP $(CFLAGS) $(SAN)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lsqlite3 -lzstd) -lm -pthread
FUZZ_SECONDS ?= 60
MPICC    ?= mpicc

LIB_SRC  := $(sort $(wildcard engine/*.c formats/*.c pipeline/*.c pipeline/*/*.c ml/*.c))
LIB_SRC  := $(filter-out pipeline/main.c engine/dist_mpi.c,$(LIB_SRC))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/fixtures.c
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
DEPS_OK  := $(BUILD)/.deps-ok
DEPS_TEST := $(BUILD)/.deps-test-ok

.PHONY: all mpi run test asan fuzz bench install clean deps test-c test-python
all: $(BUILD)/strata $(BUILD)/libstrata.a

$(DEPS_OK): scripts/deps.sh
	@bash scripts/deps.sh base
	@mkdir -p $(BUILD) && touch $@

$(DEPS_TEST): scripts/deps.sh | $(DEPS_OK)
	@bash scripts/deps.sh test
	@touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# Test objects include <criterion/criterion.h>: its package comes first.
$(TEST_OBJ): | $(DEPS_TEST)

$(BUILD)/libstrata.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/strata: $(BUILD)/obj/pipeline/main.o $(BUILD)/libstrata.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/test_strata: $(TEST_OBJ) $(BUILD)/libstrata.a $(BUILD)/strata
	$(CC) $(ALL_CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libstrata.a $(LDFLAGS) $(LDLIBS) -lcriterion

# ---- the MPI build: the library with engine/dist_mpi.c linked before it,
# so its st_dist_* replace the single-rank ones of engine/dist_single.c
mpi: $(BUILD)/strata-mpi

$(BUILD)/.deps-mpi-ok: scripts/deps.sh | $(DEPS_OK)
	@bash scripts/deps.sh mpi
	@command -v $(MPICC) >/dev/null || { echo "make mpi: $(MPICC) not found on PATH: install Open MPI (Debian: openmpi-bin libopenmpi-dev)" >&2; exit 1; }
	@touch $@

$(BUILD)/obj-mpi/engine/dist_mpi.o: engine/dist_mpi.c engine/dist.h | $(BUILD)/.deps-mpi-ok
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/strata-mpi: $(BUILD)/obj/pipeline/main.o $(BUILD)/obj-mpi/engine/dist_mpi.o $(BUILD)/libstrata.a
	$(MPICC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# ---- the demo -------------------------------------------------------------
data/example.db: | $(BUILD)/strata
	$(BUILD)/strata gen --out $@

run: $(BUILD)/strata data/example.db
	$(BUILD)/strata run --customers data/chinook.db --transactions data/example.db --warehouse warehouse

# ---- tests ----------------------------------------------------------------
# The Criterion binary finds the CLI through STRATA_BIN and fixtures in tests/.
test: test-c test-python

# The MPI tests (tests/test_mpi.c) run when mpicc is on PATH (then
# build/strata-mpi is built first); otherwise they skip, saying so.
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
MPI_TEST_BIN := $(if $(HAVE_MPICC),$(BUILD)/strata-mpi)

test-c: $(BUILD)/test_strata $(MPI_TEST_BIN)
	@bash scripts/deps.sh test
	@$(if $(HAVE_MPICC),,echo "test-c: mpicc not found: the MPI tests will be skipped (bash scripts/deps.sh mpi installs Open MPI)")
	STRATA_BIN=$(abspath $(BUILD)/strata) $(if $(HAVE_MPICC),STRATA_MPI_BIN=$(abspath $(BUILD)/strata-mpi)) $(TEST_ENV) $(BUILD)/test_strata $(TEST_ARGS)

test-python: $(BUILD)/strata $(BUILD)/libstrata.a
	@bash scripts/deps.sh python
	@if [ -d formats/python/tests ]; then \
	  STRATA_BIN=$(abspath $(BUILD)/strata) STRATA_LIB=$(abspath $(BUILD)/libstrata.a) \
	    /usr/bin/python3 -m unittest discover -s formats/python/tests -v; \
	else echo "test-python: formats/python/tests not present, skipped"; fi

asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	  TEST_ENV="STRATA_SANITIZED=1 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)" test-c

fuzz:
	@bash scripts/deps.sh fuzz
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench:
	@bash bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/strata $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/strata $(DESTDIR)$(PREFIX)/bin/strata
	install -m 644 $(BUILD)/libstrata.a $(DESTDIR)$(PREFIX)/lib/libstrata.a
	install -m 644 include/strata/*.h $(DESTDIR)$(PREFIX)/include/strata/
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/strata.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/strata.pc

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/obj/pipeline/main.d
