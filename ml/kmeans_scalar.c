/*
 * kmeans_scalar.c: the scalar fused Lloyd kernel, the specification every
 * SIMD kernel must match bit for bit (kmeans_internal.h). It labels one
 * point at a time through km_label_scalar(), the same loop the SIMD
 * kernels run on the points left over after their last whole vector. It
 * calls nothing outside kmeans_internal.h; the choice among the kernels is
 * kmeans_dispatch.c's.
 */
#include "kmeans_internal.h"

void st_km_kernel_scalar(const float *xt, size_t stride, size_t d, size_t i0, size_t i1, const float *c, int k,
                         int32_t *label, float *dist, st_km_acc *acc)
{
    km_label_scalar(xt, stride, d, i0, i0, i1, c, k, label, dist, acc);
}
