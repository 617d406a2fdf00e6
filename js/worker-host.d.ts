// Runs inside a module Worker (see worker.d.ts): no exports.
export {};
