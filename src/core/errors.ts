/**
 * Typed errors. Every error sparq throws on bad input is a `SparqError` with a stable `code`, and its
 * message says what was expected, what was given, and what to do. This file imports nothing, so every
 * layer (numerics included) can throw these.
 */

export type SparqErrorCode =
  | 'E_SHAPE'
  | 'E_DTYPE'
  | 'E_UNSUPPORTED_OPTION'
  | 'E_HEAD_DIM'
  | 'E_NON_FINITE_INPUT'
  | 'E_NO_ADAPTER'
  | 'E_DEVICE_LOST'
  | 'E_GPU_OUT_OF_MEMORY'
  | 'E_GPU'
  | 'E_MALFORMED_FILE';

export class SparqError extends Error {
  readonly code: SparqErrorCode;
  constructor(code: SparqErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A tensor's shape does not fit the operation (rank, a dimension, or two tensors that must agree). */
export class ShapeError extends SparqError {
  constructor(message: string) {
    super('E_SHAPE', message);
  }
}

/** A tensor's dtype, or a number format name, is not one the operation accepts. */
export class DTypeError extends SparqError {
  constructor(message: string) {
    super('E_DTYPE', message);
  }
}

/** An option value, or a combination of options, that the operation does not support. */
export class UnsupportedOptionError extends SparqError {
  constructor(message: string) {
    super('E_UNSUPPORTED_OPTION', message);
  }
}

/** A head dimension the chosen backend or kernel cannot handle. */
export class UnsupportedHeadDimError extends SparqError {
  constructor(message: string) {
    super('E_HEAD_DIM', message);
  }
}

/** NaN or ±inf in an input whose `nanPolicy` is `'error'`. */
export class NonFiniteInputError extends SparqError {
  constructor(message: string) {
    super('E_NON_FINITE_INPUT', message);
  }
}

/** No WebGPU adapter could be acquired. The CPU backend keeps working. */
export class NoAdapterError extends SparqError {
  constructor(message: string) {
    super('E_NO_ADAPTER', message);
  }
}

/** The GPU device was lost (driver reset, destroyed device, process teardown). */
export class DeviceLostError extends SparqError {
  constructor(message: string) {
    super('E_DEVICE_LOST', message);
  }
}

/** A GPU allocation failed. */
export class GpuOutOfMemoryError extends SparqError {
  constructor(message: string) {
    super('E_GPU_OUT_OF_MEMORY', message);
  }
}

/** A WebGPU validation or internal error that is not one of the cases above. */
export class GpuError extends SparqError {
  constructor(message: string) {
    super('E_GPU', message);
  }
}

/** A file (safetensors, JSON parameters) that does not follow its format. */
export class MalformedFileError extends SparqError {
  constructor(message: string) {
    super('E_MALFORMED_FILE', message);
  }
}
