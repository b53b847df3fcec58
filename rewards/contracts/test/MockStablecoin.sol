// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A stand-in stablecoin for tests (6 decimals, like USDC): anyone may mint.
/// @dev Never deployed outside tests and local nodes.
contract MockStablecoin is ERC20 {
    constructor() ERC20("Test Dollar", "tUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
