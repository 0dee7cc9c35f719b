/* Internal to the dptrain program: the inspect command. */
#ifndef DPT_CLI_INSPECT_H
#define DPT_CLI_INSPECT_H

#include "dpt/config.h"

/* Prints the model's layer table for the data set's input shape. */
dpt_status dpt_cli_inspect(const dpt_config *cfg);

#endif /* DPT_CLI_INSPECT_H */
