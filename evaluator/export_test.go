package evaluator

// FullPathMatrix computes a matrix evaluating every pair in full, for
// tests that compare it with the shared evaluations of Matrix.
func FullPathMatrix(ix *Index, o MatrixOptions) *Matrix {
	o.fullPath = true
	return ix.Matrix(o)
}
