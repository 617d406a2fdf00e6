// The worker's entry: tinycnn's worker host owns the WebAssembly module and the models.
import 'tinycnn/worker-host';
