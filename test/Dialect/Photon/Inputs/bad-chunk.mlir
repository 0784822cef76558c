// Input of photon-opt-driver.test: a chunk size that does not divide the stream.
func.func @f(%x: tensor<1x10x32xf32>) -> tensor<1x2x128xf32> {
  %0 = photon.chunk %x {size = 4 : i64} : tensor<1x10x32xf32> -> tensor<1x2x128xf32>
  return %0 : tensor<1x2x128xf32>
}
