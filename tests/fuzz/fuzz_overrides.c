/* libFuzzer harness: the command line's --set section.key=value overrides
 * (src/cli/config.c), applied to a fixed configuration with one head.
 *
 * The input is split at newlines into up to 16 override strings (cut at the
 * first NUL). When the configuration loads, it must survive the same round
 * trip as in fuzz_config: written, parsed again with no overrides, written
 * again to the same text; otherwise abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/config.h"
#include "dpt/error.h"

#define MAX_OVERRIDES 16

static const char base[] =
    "[model]\n"
    "layers = conv 8 3 pad=same, relu, maxpool 2, flatten, 32 relu\n"
    "[head.item]\n"
    "layers = 10\n"
    "[train]\n"
    "epochs = 1\n"
    "[optim]\n"
    "lr = 0.1\n";

static char *write_text(const dpt_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    dpt_config_write(cfg, out);
    if (fclose(out) != 0) abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *sets[MAX_OVERRIDES];
    int n = 0;
    for (char *line = text; n < MAX_OVERRIDES;) {
        sets[n++] = line;
        char *end = strchr(line, '\n');
        if (!end) break;
        *end = '\0';
        line = end + 1;
    }

    static dpt_config cfg, again;
    if (dpt_config_load(&cfg, base, "base.ini", sets, n) == DPT_OK) {
        char *written = write_text(&cfg);
        if (dpt_config_load(&again, written, "written.ini", NULL, 0) != DPT_OK) {
            fprintf(stderr, "fuzz_overrides: the written configuration does not parse: %s\n"
                            "--- written ---\n%s\n", dpt_error_message(), written);
            abort();
        }
        char *rewritten = write_text(&again);
        if (strcmp(written, rewritten) != 0) {
            fprintf(stderr, "fuzz_overrides: the written configuration does not read back the "
                            "same\n--- written ---\n%s\n--- written again ---\n%s\n",
                    written, rewritten);
            abort();
        }
        free(rewritten);
        free(written);
    }
    free(text);
    return 0;
}
