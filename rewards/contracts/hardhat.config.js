// Minimal Hardhat 2 config: only `npx hardhat node` is used (integration tests, local dev):
//   npx hardhat node --hostname 127.0.0.1 --port 8545
// Chain id 31337 and Hardhat's default hardfork (osaka, with its 16,777,216 per-tx gas cap,
// like mainnet). Contracts are compiled by build.mjs with solc-js, never by Hardhat (its
// compiler download is unavailable here), so Hardhat's own paths point at a scratch folder
// that cannot clobber the committed artifacts/.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
    },
  },
  paths: {
    sources: "./.hardhat/sources",
    cache: "./.hardhat/cache",
    artifacts: "./.hardhat/artifacts",
  },
};
