/* Internal to src/solve: the BLACS and ScaLAPACK tool routines both
 * ScaLAPACK users (lbfgs_vf.c, dense.c) call. No C header ships with
 * Debian's ScaLAPACK, so the prototypes are declared here, once. */
#ifndef DPT_SOLVE_BLACS_H
#define DPT_SOLVE_BLACS_H

#include <mpi.h>

void Cblacs_gridinit(int *ctx, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctx, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctx);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ctx, const int *lld, int *info);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);

#endif /* DPT_SOLVE_BLACS_H */
