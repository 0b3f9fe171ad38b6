/**
 * checkpointer: save and restore named values — above all large typed arrays — to HDF5, NumPy
 * (.npz/.npy) and JSON files, through McUtils' Checkpointer API.
 */
import './factory';

export { Checkpointer } from './checkpointer';
export type { AttributeRead, AttributeValue, CheckpointerOptions, CheckpointerClass, CanonicalSpec } from './checkpointer';
export { buildCanonical, extensionMap, fromFile, registerExtension } from './factory';
export { JSONCheckpointer } from './backends/json';
export type { JSONCheckpointerOptions } from './backends/json';
export { NPY_KEY, NumPyCheckpointer } from './backends/numpy';
export type { NumPyCheckpointerOptions } from './backends/numpy';
export { HDF5Checkpointer } from './backends/hdf5';
export type { HDF5CheckpointerOptions } from './backends/hdf5';
export { DictCheckpointer } from './backends/dict';
export { NullCheckpointer } from './backends/null';
export { CheckpointerError, CheckpointerKeyError } from './errors';
export { hdf5Info } from './native';
export type { HDF5Info, HDF5FilterName, FilterSupport } from './native';
export type { CheckpointerErrorCode } from './errors';
export { NDArray, ndarray } from './values/ndarray';
export type { NDArrayLike } from './values/ndarray';
export type { DType, TypedArray } from './values/dtype';
export { FLOAT16_AS_BITS, float16ToNumber, numberToFloat16 } from './values/dtype';
export { EnumArray, RecordArray, recordArray } from './values/records';
export type { Column, FieldType, IntDType, RecordField } from './values/records';
export { registerClass, unregisterClass, UnregisteredObject } from './values/registry';
export type { RegisteredClass, StatefulInstance } from './values/registry';
export type { Key, Value } from './values/model';
export { HDF5Dataset } from './dataset/hdf5-dataset';
export type { Dataset, DatasetOptions, DatasetSelection, AxisSelection, AppendData, WriteData, WriteOptions, DatasetAttrs, Compression } from './dataset/types';
export { CheckpointManager, MANAGER_RECORD_KEY } from './manager';
export type {
  BestBy, CheckpointManagerEvents, CheckpointManagerOptions, JsonValue, PruneEvent, RestoredStep, SaveOptions, SkipEvent, StepFormat, StepMetadata,
} from './manager';
export type { AutoFlush } from './dataset/types';
export type { LockMode } from './io/lock';
