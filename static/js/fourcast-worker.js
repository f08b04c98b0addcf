// The SharedWorker that holds one connection for every tab of an origin that uses the same
// credential and transport (the worker's name says which: see fourcast-share.js). It runs the
// same FourcastClient a tab runs on its own; ShareHub relays its events to the tabs.

import { ShareHub } from './fourcast-hub.js';

const hub = new ShareHub('worker');

globalThis.onconnect = (e) => {
  const port = e.ports[0];
  port.onmessage = (m) => hub.handle(port, m.data);
  port.start();
};
