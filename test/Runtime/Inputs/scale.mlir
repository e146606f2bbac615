module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%in: memref<?xf32>, %out: memref<?xf32>, %n: index) kernel {
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %tid = gpu.thread_id x
      %t0 = arith.muli %bid, %bdim : index
      %i = arith.addi %t0, %tid : index
      %ok = arith.cmpi ult, %i, %n : index
      scf.if %ok {
        %v = memref.load %in[%i] : memref<?xf32>
        %c2 = arith.constant 2.0 : f32
        %c1 = arith.constant 1.0 : f32
        %m = arith.mulf %v, %c2 : f32
        %r = arith.addf %m, %c1 : f32
        memref.store %r, %out[%i] : memref<?xf32>
      }
      gpu.return
    }
  }
  func.func @scale(%in: memref<?xf32>, %out: memref<?xf32>) attributes {llvm.emit_c_interface} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c256 = arith.constant 256 : index
    %c255 = arith.constant 255 : index
    %n = memref.dim %in, %c0 : memref<?xf32>
    %t = arith.addi %n, %c255 : index
    %nb = arith.divui %t, %c256 : index
    gpu.launch_func @kernels::@scale blocks in (%nb, %c1, %c1) threads in (%c256, %c1, %c1) args(%in : memref<?xf32>, %out : memref<?xf32>, %n : index)
    return
  }
}
