// What js-libp2p 3 uses of Node.js 22 that Node.js 20 lacks. listener.mjs
// imports this module first, so it runs before any of js-libp2p's.

if (typeof Promise.withResolvers !== 'function') {
  // Promise.withResolvers (ES2024): a promise with its resolve and reject.
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}
