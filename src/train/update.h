/* Internal to src/train: the data-parallel update of one step, after the
 * local backward pass. */
#ifndef DPT_TRAIN_UPDATE_H
#define DPT_TRAIN_UPDATE_H

#include "dpt/train.h"

/* Slices, reducer and buffers of the update; called once the model exists. */
dpt_status dpt_update_setup(dpt_trainer *t);
/* Sharded with every rank on one node: the model's parameters and gradients
 * move into a shared window (dpt_sharder_share). Collective, once the ranks
 * agreed the trainer exists; teardown moves them back. */
dpt_status dpt_update_share(dpt_trainer *t);
void dpt_update_teardown(dpt_trainer *t);

/* The forward context's layer_done hook when reduction overlaps backward. */
void dpt_update_layer_done(int layer, void *user);
/* ... and its progress hook. */
void dpt_update_progress(void *user);

/* Reduce, check, clip and apply the update; global_count divides the sums. */
dpt_status dpt_update_apply(dpt_trainer *t, size_t global_count);

#endif /* DPT_TRAIN_UPDATE_H */
