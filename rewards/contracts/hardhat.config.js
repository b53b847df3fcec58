// Minimal Hardhat 2 config: only `npx hardhat node` is used (integration tests, local dev).
// Contracts are compiled by build.mjs with solc-js, never by Hardhat (whose compiler
// download is unavailable here), so Hardhat's own paths point at a scratch folder that
// cannot clobber the committed artifacts/.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      hardfork: "cancun",
    },
  },
  paths: {
    sources: "./.hardhat/sources",
    cache: "./.hardhat/cache",
    artifacts: "./.hardhat/artifacts",
  },
};
