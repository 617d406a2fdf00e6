// Makes a freed Model or Ensemble say so. wasm-bindgen's glue zeroes an
// object's pointer on free(); calling on it then reaches Rust as a null pointer
// ("null pointer passed to rust"), and a second free() would hand Rust pointer 0.
// The guard wraps each method and getter of the classes once: a call on a
// freed object throws an Error naming the call, and free() after free() does nothing.

const GUARDED = Symbol.for('tinycnn.guarded');

/** `classes`: the package's exports (or any object holding its classes by name). */
export function guardFreed(classes) {
  for (const name of ['Model', 'Ensemble', 'GpuModel']) {
    const proto = classes[name]?.prototype;
    if (!proto || Object.prototype.hasOwnProperty.call(proto, GUARDED)) continue;
    Object.defineProperty(proto, GUARDED, { value: true });
    for (const key of Reflect.ownKeys(proto)) {
      if (key === 'constructor' || key === GUARDED) continue;
      const d = Object.getOwnPropertyDescriptor(proto, key);
      const label = `${name}.${typeof key === 'symbol' ? key.description : key}`;
      if (key === 'free' || key === Symbol.dispose) {
        const free = d.value;
        d.value = function () {
          if (this.__wbg_ptr !== 0) free.call(this);
        };
      } else if (typeof d.value === 'function') {
        const method = d.value;
        d.value = function (...args) {
          if (this.__wbg_ptr === 0) throw freedError(label, name);
          return method.apply(this, args);
        };
      } else if (d.get) {
        const get = d.get;
        d.get = function () {
          if (this.__wbg_ptr === 0) throw freedError(label, name);
          return get.call(this);
        };
      } else {
        continue;
      }
      Object.defineProperty(proto, key, d);
    }
  }
  return classes;
}

function freedError(label, name) {
  return new Error(`${label}: this ${name} was freed (free() was called); load a new one`);
}
