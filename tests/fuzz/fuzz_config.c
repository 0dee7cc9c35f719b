/* libFuzzer harness: the configuration parser (src/cli/config.c, and the
 * layer-list parser of src/nn/spec.c under it).
 *
 * The input is INI text (cut at its first NUL, as a C string is). It is
 * parsed with no --set overrides. When it parses, the resolved
 * configuration is written back with dpt_config_write, which promises text
 * that dpt_config_load accepts and that yields the same configuration: the
 * harness re-parses it and writes it again, and abort()s if the second parse
 * fails or the two texts differ. So a crash here is either a memory or UB
 * error (ASan, UBSan) or a broken round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/config.h"
#include "dpt/error.h"

/* dpt_config_write into a malloc'ed NUL-terminated string. */
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

    static dpt_config cfg, again; /* large: not on the stack */
    if (dpt_config_load(&cfg, text, "fuzz.ini", NULL, 0) == DPT_OK) {
        char *written = write_text(&cfg);
        if (dpt_config_load(&again, written, "written.ini", NULL, 0) != DPT_OK) {
            fprintf(stderr, "fuzz_config: dpt_config_write produced text that does not parse:\n"
                            "  %s\n--- input ---\n%s\n--- written ---\n%s\n",
                    dpt_error_message(), text, written);
            abort();
        }
        char *rewritten = write_text(&again);
        if (strcmp(written, rewritten) != 0) {
            fprintf(stderr, "fuzz_config: the written configuration does not read back the same\n"
                            "--- input ---\n%s\n--- written ---\n%s\n--- written again ---\n%s\n",
                    text, written, rewritten);
            abort();
        }
        free(rewritten);
        free(written);
    }
    free(text);
    return 0;
}
