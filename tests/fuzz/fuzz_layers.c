/* libFuzzer harness: the layer-list parser of [model] layers and [head.*]
 * layers (src/nn/spec.c), e.g. "conv 32 3 pad=same, relu, maxpool 2, 10".
 *
 * The input is the list's text (cut at its first NUL). When it parses, the
 * list is written back with dpt_layer_list_format, which promises text that
 * dpt_layer_list_parse reads: the harness parses that again and abort()s if
 * it fails, gives another number of layers, or formats to other text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/model.h"

static char *format(const dpt_layer_spec *layers, int n)
{
    size_t need = dpt_layer_list_format(layers, n, NULL, 0);
    char *text = malloc(need + 1);
    if (!text) abort();
    if (dpt_layer_list_format(layers, n, text, need + 1) != need) abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static dpt_layer_spec layers[DPT_MAX_LAYERS], again[DPT_MAX_LAYERS];
    char why[512];
    int n, m;
    if (dpt_layer_list_parse(text, layers, DPT_MAX_LAYERS, &n, why, sizeof why) == DPT_OK) {
        char *written = format(layers, n);
        if (dpt_layer_list_parse(written, again, DPT_MAX_LAYERS, &m, why, sizeof why) != DPT_OK ||
            m != n) {
            fprintf(stderr, "fuzz_layers: '%s' parsed to %d layers written as '%s', which reads "
                            "back as %d layers: %s\n", text, n, written, m, why);
            abort();
        }
        char *rewritten = format(again, m);
        if (strcmp(written, rewritten) != 0) {
            fprintf(stderr, "fuzz_layers: '%s' written as '%s' reads back as '%s'\n", text,
                    written, rewritten);
            abort();
        }
        free(rewritten);
        free(written);
    }
    free(text);
    return 0;
}
